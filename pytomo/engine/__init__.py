"""The measurement stages: HTTP, DNS, RTT, download, player and playout (the crawl that runs them is pytomo.crawl)."""
