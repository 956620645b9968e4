#!/usr/bin/env python3
"""Mail for bench/mail.sh: generated, delivered over IMAP, then checked.

  mail_gen.py deliver HOST PORT USER PASSWORD N RUN PAIRS
      Generates N mails (the same ones for the same N, only the Message-IDs
      carry RUN so every run's are new) and APPENDs them, unseen, to INBOX in
      order, so UIDs follow the order they were written in. A fifth are
      replies (In-Reply-To and References) to an earlier mail of the run,
      most of them to one of the 40 before it (the same pass, often the same
      batch); a quarter are multipart/alternative (text and HTML), a tenth
      carry an attachment (10-30 KB). Writes "reply<TAB>parent" Message-IDs
      to PAIRS.

  mail_gen.py check PAIRS N DETAILS
      DETAILS: "message_id<TAB>ticket" of every stored message. Checks that
      every mail is stored once, that there is one ticket per mail that is
      not a reply, and that every reply is in its parent's ticket. Prints
      the figures; exits 1 when a check fails.
"""

import base64
import imaplib
import random
import sys


def mails(n, run):
    rnd = random.Random(2026)
    written = []  # (message_id, subject, references, sender)
    for i in range(n):
        mid = f"m{i}.{run}@cliente.bench.test"
        reply_to = None
        if i >= 5 and i % 5 == 4:
            # Mostly a mail shortly before (same pass, likely same batch),
            # sometimes one far back.
            back = rnd.randint(1, 40) if rnd.random() < 0.8 else rnd.randint(1, i)
            reply_to = written[i - back]
        if reply_to:
            pmid, psubject, prefs, sender = reply_to
            refs = prefs + [pmid]
            subject = psubject if psubject.startswith("Re: ") else f"Re: {psubject}"
        else:
            sender = f"cliente{rnd.randint(1, 400)}@cliente.bench.test"
            topic = rnd.choice(["la impresora", "el correo", "la factura", "la red", "el sistema", "la VPN"])
            subject = f"Consulta {i} sobre {topic}"
            refs = []
        written.append((mid, subject, refs, sender))
        words = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(30, 160)))
        text = f"Buenos días:\r\n\r\n{words}.\r\n\r\nSaludos,\r\n{sender.split('@')[0]}\r\n"
        if reply_to:
            text += "\r\n> " + "mensaje anterior citado " * 3 + "\r\n"
        head = (
            f"Message-ID: <{mid}>\r\n"
            f"Date: Mon, 30 Nov 2026 {8 + i // 3600 % 10:02d}:{i // 60 % 60:02d}:{i % 60:02d} -0600\r\n"
            f"From: Cliente <{sender}>\r\nTo: soporte@bench.test\r\nSubject: {subject}\r\n"
            "MIME-Version: 1.0\r\n"
        )
        if refs:
            head += f"In-Reply-To: <{refs[-1]}>\r\nReferences: " + " ".join(f"<{r}>" for r in refs) + "\r\n"
        if i % 10 == 3:
            size = rnd.randint(10_000, 30_000)
            blob = bytes(rnd.getrandbits(8) for _ in range(size))
            att = base64.encodebytes(b"%PDF-1.4\n" + blob).decode().replace("\n", "\r\n")
            body = (
                'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
                f'--mix\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n'
                f'--mix\r\nContent-Type: application/pdf; name="informe-{i}.pdf"\r\n'
                f'Content-Disposition: attachment; filename="informe-{i}.pdf"\r\n'
                f"Content-Transfer-Encoding: base64\r\n\r\n{att}\r\n--mix--\r\n"
            )
        elif i % 4 == 1:
            html = "<html><body><p>" + text.replace("\r\n\r\n", "</p><p>").replace("\r\n", "<br>") + "</p></body></html>"
            body = (
                'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
                f"--alt\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n"
                f"--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n"
                "--alt--\r\n"
            )
        else:
            body = f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}"
        yield mid, (refs[-1] if refs else None), (head + body).encode()


WORDS = (
    "impresora tóner papel atasco red correo contraseña factura pedido sistema servidor acceso usuario "
    "pantalla error mensaje archivo carpeta permiso reunión oficina segundo piso urgente gracias favor "
    "revisar cuando pueden ayudar desde ayer mañana tarde no funciona lento conexión"
).split()


def deliver(host, port, user, password, n, run, pairs):
    imap = imaplib.IMAP4(host, int(port))
    imap.login(user, password)
    with open(pairs, "w") as out:
        for mid, parent, raw in mails(int(n), run):
            typ, data = imap.append("INBOX", None, None, raw)
            if typ != "OK":
                sys.exit(f"APPEND refused: {data}")
            if parent:
                out.write(f"{mid}\t{parent}\n")
    imap.logout()


def unsee(host, port, user, password):
    """Every mail of the INBOX unseen again (for a second reading of it)."""
    imap = imaplib.IMAP4(host, int(port))
    imap.login(user, password)
    imap.select("INBOX")
    typ, data = imap.store("1:*", "-FLAGS.SILENT", "(\\Seen)")
    if typ != "OK":
        sys.exit(f"STORE refused: {data}")
    imap.logout()


def check(pairs, n, details):
    n = int(n)
    replies = [line.rstrip("\n").split("\t") for line in open(pairs) if line.strip()]
    ticket_of = {}
    stored = 0
    for line in open(details):
        if not line.strip():
            continue
        mid, ticket = line.rstrip("\n").split("\t")
        stored += 1
        ticket_of[mid.strip().strip("<>").lower()] = ticket
    tickets = len(set(ticket_of.values()))
    strays = sum(1 for r, p in replies if ticket_of.get(r.lower()) != ticket_of.get(p.lower()))
    missing = sum(1 for r, _ in replies if r.lower() not in ticket_of)
    ok = stored == n and len(ticket_of) == n and tickets == n - len(replies) and strays == 0 and missing == 0
    print(f"{stored} {tickets} {n - len(replies)} {len(replies)} {strays} {'ok' if ok else 'FAILED'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    {"deliver": deliver, "unsee": unsee, "check": check}[sys.argv[1]](*sys.argv[2:])
