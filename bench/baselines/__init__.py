"""What users write without the engine, measured beside it.

* :mod:`.styles`: the naive (stdlib json, plain dataclasses, ``queue.Queue``) and tuned
  (orjson, slotted shared objects, ``queue.SimpleQueue``) ways of building a pipeline;
* :mod:`.fanout`: order check, routing and one queue and thread per consumer;
* :mod:`.live`: a websocket reader with dict books feeding consumer threads;
* :mod:`.bare_ws`: bare websocket-client read loops (the read ceiling, and default settings).
"""
