"""OKX v5 public market data: connection, instruments, parser, books, feed."""
