"""TuiTalk's browser client, run by Pyodide in the page (``clients/web/static``).

The chat logic is the shared core (:mod:`tuitalk.client.session`), loaded from the
``tuitalk_core`` wheel; this package is the browser's thin layer around it:

- :mod:`tuitalk_web.driver`: the core over ``js.WebSocket`` and asyncio on Pyodide's WebLoop;
- :mod:`tuitalk_web.view`: the core's UI events as semantic DOM (``role="log"`` per room);
- :mod:`tuitalk_web.app`: wiring, commands, keyboard, persistence;
- :mod:`tuitalk_web.render`, :mod:`tuitalk_web.commands`: pure helpers (no ``js``), tested
  on CPython too; :mod:`tuitalk_web.store`: ``localStorage``; :mod:`tuitalk_web.dom`: the
  one way elements are built (text only, never markup).
"""
