"""Email over SMTP: the queue, the sender with retries, the daily digest."""
