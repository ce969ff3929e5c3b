"""Venue adapters: one folder per venue, the same file names in each.

Each venue folder holds ``config.py`` (endpoints, limits), ``symbols.py`` (venue names to
canonical BASE-QUOTE), ``parsing.py`` (frames to records), ``books.py`` (the venue's book
procedure), ``connection.py`` (websocket) and ``rest.py`` (HTTP). Engine modules never import
a venue; venues produce records and hand them to the engine.
"""
