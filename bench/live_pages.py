#!/usr/bin/env python3
"""Open console pages that keep themselves up to date, as the browser does.

Each page is a thread: it loads its page once (the queue, or a ticket),
reads the fingerprint (`huella`) and the newest message shown (`ultimo`),
then every PERIOD seconds asks for its live part as htmx does (mode `live`),
or reloads the whole page (mode `reload`, the comparison). Optionally a
mailer posts a new mail to correo/save every MAIL_EVERY seconds (new
Message-IDs), so that some answers carry changes. Prints a JSON summary:
requests by status, bytes received, mails posted.

usage: live_pages.py BASE SECONDS MODE SESSIONS_FILE TICKETS MAIL_EVERY SECRET RUN
  SESSIONS_FILE: one console session cookie value per line (one per operator)
  TICKETS: comma-separated ticket ids for the ticket pages; as many queue
           pages as ticket pages are opened (50 pages for 25 tickets)
"""
import collections
import html
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request

BASE, SECONDS, MODE, SESSIONS, TICKETS, MAIL_EVERY, SECRET, RUN = sys.argv[1:9]
SECONDS, MAIL_EVERY = float(SECONDS), float(MAIL_EVERY)
PERIOD = 2.0
sessions = [l.strip() for l in open(SESSIONS) if l.strip()]
tickets = [int(t) for t in TICKETS.split(",") if t]
counts = collections.Counter()
received = [0]
lock = threading.Lock()
stop_at = time.monotonic() + SECONDS


def get(path, cookie):
    req = urllib.request.Request(BASE + path, headers={"Cookie": "consola_sesion=" + cookie, "HX-Request": "true"})
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def field(body, name):
    m = re.search(r'id="%s" name="%s" value="([^"]*)"' % (name, name), body)
    return html.unescape(m.group(1)) if m else ""


def page(i):
    cookie = sessions[i % len(sessions)]
    if i < len(tickets):
        full, pulse = "/consola/tickets/%d" % tickets[i], "/consola/tickets/%d/vivo" % tickets[i]
    else:
        full, pulse = "/consola/tickets", "/consola/vivo?vista=abiertos"
    status, body = get(full, cookie)
    assert status == 200, (full, status, body[:200])
    huella, ultimo = field(body, "huella"), field(body, "ultimo")
    assert huella, body[:500]
    time.sleep(PERIOD * i / 50)  # pages opened over one period, as people do
    while time.monotonic() < stop_at:
        started = time.monotonic()
        if MODE == "live":
            sep = "&" if "?" in pulse else "?"
            q = "%shuella=%s&respondiendo=&ultimo=%s" % (sep, huella, ultimo)
            status, body = get(pulse + q, cookie)
            if status == 200:
                huella = field(body, "huella") or huella
                ultimo = field(body, "ultimo") or ultimo
        else:
            status, body = get(full, cookie)
        with lock:
            counts[status] += 1
            received[0] += len(body)
        time.sleep(max(0.0, PERIOD - (time.monotonic() - started)))


def mailer():
    n = 0
    while MAIL_EVERY > 0 and time.monotonic() < stop_at:
        n += 1
        mail = {"sistema": "bench", "subject": "Vivo %d" % n, "from": "vivo%d@bench.test" % n,
                "to": "soporte@bench.test", "body": "Caso nuevo %d" % n, "date": "2026-12-07 08:00:00",
                "headers": {"Message-ID": "<vivo.%s.%d@bench.test>" % (RUN, n)}}
        req = urllib.request.Request(BASE + "/api/correo/save", data=json.dumps(mail).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "X-User-Consumo": "bench",
                                              "X-User-Secret": SECRET})
        with urllib.request.urlopen(req, timeout=10) as res:
            assert res.status == 200
        with lock:
            counts["mails"] += 1
        time.sleep(MAIL_EVERY)


threads = [threading.Thread(target=page, args=(i,)) for i in range(2 * len(tickets))]
threads.append(threading.Thread(target=mailer))
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"pages": 2 * len(tickets), "mode": MODE, "by_status": {str(k): v for k, v in counts.items()},
                  "bytes": received[0]}))
