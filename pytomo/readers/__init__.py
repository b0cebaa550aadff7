"""The only code that reads run databases with SQL: every schema version of ours and the 2015 tables alike."""
