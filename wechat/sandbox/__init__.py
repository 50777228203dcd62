"""The sandbox WeChat: a faithful fake of the platform, served under /sandbox/.

Only when ``WECHAT_SANDBOX=true`` (checked per request; every /sandbox/ URL is
a 404 otherwise). Point ``WECHAT_API_BASE`` at ``http://HOST:PORT/sandbox``.

* ``/sandbox/cgi-bin/…`` — the fake API (`views`, `platform`, `rules`): token,
  stable_token, message/custom/send, message/custom/typing, media/upload,
  media/get, material/add_material, material/del_material, user/info; any other path answers 40066.
  Apps known to the platform are the console's `OfficialAccount` rows.
* ``/sandbox/`` — the follower simulator page (`simulator`).
* ``/sandbox/files/<media_id>`` — media bytes by URL (video_url, permanent
  image url, the simulator's pictures).

Python API for tests: `wechat.sandbox.follower` (acting as a follower, reading
delivered messages and recorded calls, faults). Fault kinds: `wechat.sandbox.faults`.

Where ../shared/wechat-api.md leaves a choice open, the sandbox decides so:

* wrong secret: ``/cgi-bin/token`` → 40125, ``/cgi-bin/stable_token`` → 40001;
* a token never issued → 40014; replaced (after the 5-minute overlap, or at
  once by force_refresh) → 40001; past its 7200 s → 42001;
* custom/send: payload key missing or a second message-type key → 47001;
  payload (or ``news.articles``) of the wrong JSON type → 45162; a required
  media field missing → 40007, another required field → 47001; unfollowed
  → 45015, never followed → 43004;
* uploads: the bytes decide the format when recognisable, else the extension;
  voice duration is not checked.
"""
