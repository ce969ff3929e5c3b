"""Binance spot and USD-M futures: combined streams, diff-depth books, REST snapshots."""
