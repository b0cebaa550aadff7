#!/usr/bin/env python3
"""Pytomo crawler: measure video streaming (see README.md and docs/options.md)."""

import sys

from pytomo.cli import crawl_main

if __name__ == "__main__":
    sys.exit(crawl_main())
