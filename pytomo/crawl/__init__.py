"""The crawl: its seeds, and the loop that runs rounds of videos through the engine and hands each to the sinks."""
