"""Job templates: saved parameter sets, private or shared, submitted with new files."""
