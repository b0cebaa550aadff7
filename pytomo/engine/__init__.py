"""The measurement stages and the crawl that runs them."""
