"""Scrapy spiders of newsarchive (``SPIDER_MODULES = ["spiders"]``)."""
