"""Imported once by the extraction pool's fork server (see ``extraction_pool``):
trafilatura and the language model are loaded there, before any worker is forked from it."""

from crawler.extraction.pool import warm_up

warm_up()
