"""Venue adapters: one folder per venue, the same file names in each.

Each venue folder holds ``config.py`` (endpoints, limits), ``symbols.py`` (venue names to
canonical BASE-QUOTE), ``parsing.py`` (frames to records), ``books.py`` (the venue's book
procedure), ``connection.py`` (websocket), ``rest.py`` (HTTP) and ``feed.py`` (all of it wired
into an engine). Engine modules never import a venue; venues produce records and hand them to
the engine.

What the venues share lives here, once: ``connection_config.py`` (the config base),
``ws_connection.py`` and ``ws_session.py`` (the websocket connection), ``venue_feed.py`` (the
feed base), ``dead_letters.py``, ``records.py`` and ``secret.py``.
"""
