"""Alert rules, their evaluation, and the alerts' life: open -> acknowledged -> resolved."""
