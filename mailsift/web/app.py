"""The review UI: server-rendered pages over the quarantine store, for admins and for users.

Starlette + Jinja2 rather than a single-page app: every page is one request with no script
needed (one small file for "select all"), which keeps it fast, usable without a manual, and
lets the Content-Security-Policy forbid everything but our own files. Each form carries the
session's CSRF token; each action is done through `mailsift.quarantine.review`, recorded in
the message's history and logged with the user's name.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailsift.analysis.relays import client_text
from mailsift.classifier.open_store import open_store
from mailsift.classifier.store import StoreError
from mailsift.config import Config
from mailsift.domains import ascii_address, unicode_address
from mailsift.quarantine import review
from mailsift.quarantine.model import (
    FORGED_MEANS,
    LIST_KINDS,
    MAX_PAGE,
    SORT_KEYS,
    IndexUnavailable,
    NoSuchMessage,
    QuarantineError,
    Query,
    Refused,
    ServerFailed,
    addressed_to,
    entry_problem,
    forged_mark,
    forged_text,
    list_entry,
    page_count,
    recipient_filter,
    rule_rows,
    valid_id,
)
from mailsift.quarantine.store import QuarantineStore
from mailsift.quarantine.text import (
    MAY_HAVE_BEEN_RELEASED,
    SINCE_FORMS,
    UNRECORDED,
    parse_since,
    state_word,
    unsure_releases,
)
from mailsift.report import score_text
from mailsift.web import stats
from mailsift.web.auth import (
    LoginThrottle,
    Revoked,
    Viewer,
    check_password,
    logged_name,
    password_key,
    same_token,
)
from mailsift.web.message_view import MAX_TEXT, message_view

# Control characters (line breaks, C1, Unicode line and paragraph separators), as \n, \x1b...
UNPRINTABLE = str.maketrans({chr(c): chr(c).encode("unicode_escape").decode()
                             for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]})


class OneLine(logging.Filter):
    """Keeps each record of the UI's log on one line. Ids, paths and names in it come from
    users: a posted id with a line break in it wrote a line of its own ("user=admin
    action=delete ..."), which whoever reads the log of actions would take for ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = record.getMessage().translate(UNPRINTABLE), ()
        return True


log = logging.getLogger("mailsift.web")
log.addFilter(OneLine())

HERE = Path(__file__).parent
SESSION_COOKIE = "mailsift_session"
ACTIONS = {
    "release": "Release", "release-ham": "Release + learn as ham", "delete": "Delete",
    "spam": "Learn as spam", "ham": "Learn as ham", "forget": "Forget",
    "spam-report": "Spam + Report", "ham-revoke": "Ham + Revoke",
}
# Where web.user_actions leaves a user nothing to do: an empty action menu, or no buttons, said
# nothing of why.
NO_ACTIONS = "Your login may read these messages but not act on them: ask your mail administrator."
LOGIN_ENDED = ("Your login has ended (it expired, you logged out elsewhere, or your password "
               "changed); log in again.")
MAX_BACK = 1000  # cookie bytes of a list address kept for "Back to the list" (see cookie_size)
SEARCH_FIELDS = ("to", "from", "subject", "min_score", "since")  # the list's search form
MAX_PAGE_DIGITS = len(str(MAX_PAGE))  # longer is no page a list can have
A_TO_Z_FIRST = ("sender", "subject")  # text columns; time and score start newest, highest first
LEARN = {"spam": "spam", "ham": "ham", "forget": "forget", "spam-report": "spam-report",
         "ham-revoke": "ham-revoke"}
# After "Released to ...; not learned as ham": a user's reason, which names no server (an
# admin's names it), and what to do; a second Release + learn as ham learns what went out.
NOT_ANSWERED = "a server it needs did not answer (if that lasts, tell your mail administrator)"
# A user's reason for a message the release port refused (review.Refused), which names no server:
# one message's own failure, the next may pass.
REFUSED = "the mail server refused it (if you need it, tell your mail administrator)"
LEARN_AGAIN = "Release + learn as ham again learns it and sends nothing twice."
# A bulk action's report, after the index failed (see Halted): names no server, as the 503 page.
INDEX_DOWN = "the quarantine did not answer"
INDEX_LOST = ("the quarantine stopped answering during it: it may be done without its history "
              "saying so")
NOT_TRIED = "stopped at the failure above"
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; "
     b"img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# Sent over https only (browsers ignore it over plain http): for a year
# the browser then reaches this host name over https alone, so a login page typed as http:// is
# never shown by whoever sits in between. No includeSubDomains: the other hosts under the UI's
# name are not the UI's to decide for.
HSTS = (b"strict-transport-security", b"max-age=31536000")


def _https(scope: Scope) -> bool:
    """The request came over https: to this server, or to a proxy of web.trusted_proxies
    (uvicorn sets the scheme from its X-Forwarded-Proto)."""
    return scope.get("scheme") == "https"


class SecurityHeaders:
    """Adds the CSP and friends to every response, and HSTS to those over https; pages (not
    static files) are never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        headers = [*SECURITY_HEADERS, HSTS] if _https(scope) else SECURITY_HEADERS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
                if not static:
                    message["headers"].append((b"cache-control", b"no-store"))
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Sessions:
    """Starlette's signed-cookie sessions, with a Secure cookie for every request over https.

    web.secure_cookies = false (plain-http tests) made every cookie plain, those sent over https
    too: a browser then sent it over plain http to the same host as well (a link or a typed
    http:// address), in clear text to whoever sits in between."""

    def __init__(self, app: ASGIApp, secure: bool, **options: Any) -> None:
        self.secure = SessionMiddleware(app, https_only=True, **options)
        self.plain = self.secure if secure else SessionMiddleware(app, https_only=False, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.secure if _https(scope) else self.plain)(scope, receive, send)


class Pages:
    """The route handlers, sharing the config, the store, the throttle and the templates."""

    def __init__(self, config: Config, store: QuarantineStore) -> None:
        self.config = config
        self.store = store
        self.throttle = LoginThrottle(config.web.login_attempts, config.web.login_delay)
        self.revoked = Revoked(store.backend)
        self.session_seconds = config.web.session_minutes * 60
        env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
        env.filters["when"] = lambda iso: datetime.fromisoformat(iso).astimezone(UTC).strftime(
            "%Y-%m-%d %H:%M")
        env.filters["rule_score"] = score_text
        env.globals["client_text"] = client_text  # the client as the milter's log names it
        env.filters["as_written"] = unicode_address  # a list entry as its user knows the domain
        env.filters["problem"] = entry_problem  # why an entry an older version stored matches nothing
        env.filters["state"] = _state  # the list's State column
        env.filters["unsure"] = unsure_releases  # a release not recorded, on the message page
        env.filters["forged"] = forged_text  # the forged results the held copy lost
        env.filters["forged_mark"] = forged_mark  # the list's mark for them, FORGED_MEANS its title
        env.globals["forged_means"] = FORGED_MEANS
        env.globals["unrecorded"] = UNRECORDED
        self.templates = Jinja2Templates(env=env)

    # --- session, CSRF, rendering -----------------------------------------------------------

    def viewer(self, request: Request) -> Viewer | None:
        """The logged-in user, while the login is younger than web.session_minutes, was not
        logged out, and their password is still the one it was opened with. Reads the index
        (see Revoked) for a cookie that passes `signed_viewer`: call it in the thread pool."""
        viewer = self.signed_viewer(request)
        if viewer is None or self.revoked.ended(viewer.name, request.session.get("sid"),
                                                request.session.get("since", 0) + self.session_seconds):
            return None
        return viewer

    def _logged_in(self, request: Request, viewer: Viewer) -> bool:
        """Whether the login the cookie names (`viewer`, its user) was not logged out: asked of
        the index, or while it cannot answer, as it last answered this process (Revoked.seen_live).
        The 503 page's reason went by the cookie alone, so a copy of an admin's cookie kept
        after a logout read a Redis host:port or a file path while the index was down."""
        try:
            return self.viewer(request) is not None
        except QuarantineError:
            return self.revoked.seen_live(viewer.name, request.session.get("sid"))

    def signed_viewer(self, request: Request) -> Viewer | None:
        """The user the session cookie names, if young enough and opened with their password
        now: all `viewer` checks but the logout kept in the index, for the pages shown while the
        index cannot be read (see `unavailable`). Reads no store."""
        session = request.session
        name, since = session.get("user"), session.get("since", 0)
        if not isinstance(name, str) or time.time() - since > self.session_seconds:
            return None
        user = next((u for u in self.config.web.users if u.name == name), None)
        if user is None or not same_token(password_key(user), session.get("key")):
            return None
        return Viewer.of(user, self.config.web, self.config.subaddressing)

    @staticmethod
    def csrf(request: Request) -> str:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)
        return str(request.session["csrf"])

    async def form(self, request: Request) -> FormData:
        """The posted form, once its CSRF token matched the session's; 403 otherwise."""
        form = await request.form()
        if not same_token(request.session.get("csrf"), form.get("csrf")):
            log.warning("refused a form without a valid CSRF token: %s %s from %s",
                        request.method, request.url.path, request.client.host if request.client else "-")
            raise HTTPException(403, "The form was stale or not ours; reload the page and try again.")
        return form

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        context.update(viewer=getattr(request.state, "viewer", None), csrf=self.csrf(request),
                       flash=request.session.pop("flash", None), no_actions=NO_ACTIONS)
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    @staticmethod
    def flash(request: Request, text: str) -> None:
        request.session["flash"] = text

    def login_required(self, handler: Callable[[Request, Viewer], Awaitable[Response]]
                       ) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            viewer = await run_in_threadpool(self.viewer, request)
            if viewer is None:
                if request.session.pop("user", None) is not None:
                    # A login that ended sent its user to the login form without a word: a
                    # Release clicked after a working day was not done, and nothing said so.
                    self.flash(request, LOGIN_ENDED + (" What you asked was not done."
                                                       if request.method == "POST" else ""))
                return RedirectResponse("/login", 303)
            request.state.viewer = viewer  # for render: the page header names who is logged in
            return await handler(request, viewer)
        return guarded

    # --- login ----------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self.render(request, "login.html")

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        # The name as the config keeps it, trimmed: "jane " (a phone's keyboard adds the space)
        # was "Wrong name or password." and counted as a failure.
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        client = request.client.host if request.client else "-"
        wait = self.throttle.wait(name, client)
        if wait:
            log.warning("login of %s from %s refused: too many failures (%.0f s to wait)",
                        logged_name(self.config.web, name), client, wait)
            return self.render(request, "login.html", 429, error=f"Too many failed logins. Try "
                               f"again in {wait:.0f} seconds.", name=name)
        user = await run_in_threadpool(check_password, self.config.web, name, password)
        if user is None:
            self.throttle.failed(name, client)
            log.warning("failed login of %s from %s", logged_name(self.config.web, name), client)
            return self.render(request, "login.html", 401, error="Wrong name or password.", name=name)
        self.throttle.succeeded(name, client)
        request.session.clear()  # a new session on login: nothing from before it carries over
        request.session.update(user=user.name, since=int(time.time()), key=password_key(user),
                               sid=secrets.token_urlsafe(16), csrf=secrets.token_urlsafe(32))
        log.info("%s logged in from %s", user.name, client)
        return RedirectResponse("/", 303)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        session = dict(request.session)
        request.session.clear()  # first: this browser is logged out even if the index is down
        log.info("%s logged out", session.get("user", "-"))
        if isinstance(session.get("user"), str) and isinstance(session.get("sid"), str):
            # A copy of the cookie must not stay logged in.
            ends = session.get("since", 0) + self.session_seconds
            try:
                await run_in_threadpool(self.revoked.add, session["user"], session["sid"], ends)
            except QuarantineError as exc:
                self._unrecorded_logout(request, session["user"], ends, exc)
        return RedirectResponse("/login", 303)

    def _unrecorded_logout(self, request: Request, user: str, ends: float,
                           exc: QuarantineError) -> None:
        """The index could not keep the logout: this browser is logged out all the same, and
        its user is told what still holds. It was the 503 page, as if the logout had failed."""
        until = datetime.fromtimestamp(ends, UTC).strftime("%Y-%m-%d %H:%M")
        log.warning("logout of %s not recorded in the quarantine index (a copy of its cookie "
                    "works until %s UTC): %s", user, until, exc)
        self.flash(request, f"You are logged out in this browser. The quarantine could not record "
                   f"it right now, so a copy of this login's cookie would work until {until} UTC.")

    # --- the list -------------------------------------------------------------------------------

    def _query(self, request: Request, viewer: Viewer) -> tuple[Query, dict[str, str], int]:
        params = {k: request.query_params.get(k, "").strip()
                  for k in (*SEARCH_FIELDS, "sort", "dir", "page")}
        scope = viewer.scope()
        if params["to"]:
            wanted = recipient_filter(params["to"])
            # The user's addresses as configured, compared in the form the filter takes; or
            # one of her subaddresses (jane+shop@), which is hers as it stands.
            scope = [wanted] if scope is None or viewer.owns(wanted) else [
                a for a in scope if addressed_to(wanted, ascii_address(a))]
        page = _page(params["page"])
        query = Query(to=scope, sender=params["from"], subject=params["subject"],
                      min_score=_number(params["min_score"]), since=_since(params["since"]),
                      sort=params["sort"] if params["sort"] in SORT_KEYS else "time",
                      descending=params["dir"] != "asc")
        return query.on_page(page, self.config.web.page_size), params, page

    async def list_page(self, request: Request, viewer: Viewer) -> Response:
        query, params, page = self._query(request, viewer)
        records, total = await run_in_threadpool(self.store.search, query)
        pages = page_count(total, self.config.web.page_size)

        def link(**change: object) -> str:
            merged = {**params, **{k: str(v) for k, v in change.items()}}
            return "/?" + urlencode({k: v for k, v in merged.items() if v})

        def heading_dir(key: str) -> str:
            """Where a column heading sorts: the column sorted now the other way round, others
            in the order a reviewer reads them first (newest, highest, A to Z). It compared the
            raw parameter, so "Time" on the default list sorted it newest first again."""
            if key == query.sort:
                return "asc" if query.descending else "desc"
            return "asc" if key in A_TO_Z_FIRST else "desc"

        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # Where a message's page leads back to: its search, sort and page. The "Quarantine" link
        # there started the list afresh, and the reviewer searched and paged again.
        request.session["list"] = here if cookie_size(here) <= MAX_BACK else "/"
        return self.render(request, "list.html", records=[viewer.shown(r) for r in records],
                           total=total, page=page, pages=pages, params=params, query=query,
                           link=link, heading_dir=heading_dir, actions=_allowed(viewer), here=here,
                           unused=_unused_filters(params) + _not_yours(viewer, params["to"], query),
                           searched=any(params[k] for k in SEARCH_FIELDS))

    async def bulk(self, request: Request, viewer: Viewer) -> Response:
        form = await self.form(request)
        action = str(form.get("action", ""))
        ids = [str(i) for i in form.getlist("ids")]
        if action not in ACTIONS or not ids:
            self.flash(request, "Select messages and an action first.")
        else:
            results = await self._apply_all(viewer, ids, action)
            request.session["flash"] = bulk_report(ACTIONS[action], results)
        return RedirectResponse(_local(str(form.get("back", "/"))), 303)

    async def _apply_all(self, viewer: Viewer, ids: list[str], action: str) -> list[Done]:
        """Each message's outcome, in order, until a failure that every later one would meet
        (see Halted): the action stops there, and the messages after it are reported as not
        tried. It was the 503 page alone: which messages had been released or deleted before it
        went unsaid, and their reviewer could not tell what state they were in. The failure is
        logged once, with its reason and the ids not tried."""
        results: list[Done] = []
        for index, message_id in enumerate(ids):
            try:
                results.append(await run_in_threadpool(self.apply, viewer, message_id, action))
            except Halted as halted:
                untried = ids[index + 1:]
                log.warning("user=%s action=%s stopped at id=%s after %d done; not tried: %s: %s",
                            viewer.name, action, message_id, sum(d.ok for d in results),
                            ", ".join(untried) or "none", halted.error)
                return [*results, halted.outcome(message_id),
                        *(Done(i, False, NOT_TRIED, None, failed_as="Not tried") for i in untried)]
        return results

    # --- one message ----------------------------------------------------------------------------

    def _record(self, viewer: Viewer, message_id: str) -> dict[str, Any]:
        """The record if it exists and this viewer may see it; 404 alike otherwise (no probing).
        An admin is told why a record cannot be read (a damaged one, with the way to save the
        message): "No such message" sent them looking for mail that was there all along."""
        try:
            record = self.store.meta(message_id) if valid_id(message_id) else None
        except IndexUnavailable:
            raise  # a 503 (see unavailable): the message may well exist
        except NoSuchMessage:
            record = None
        except QuarantineError as exc:
            if viewer.admin:
                log.warning("%s", exc)
                raise HTTPException(500, str(exc)) from None
            record = None
        if record is None or not viewer.may_see(record):
            raise HTTPException(404, "No such message.")
        return record

    async def message_page(self, request: Request, viewer: Viewer) -> Response:
        message_id = request.path_params["message_id"]
        record = await run_in_threadpool(self._record, viewer, message_id)
        view = None
        if record["state"] != "deleted":
            raw = await run_in_threadpool(self.store.raw, message_id)
            view = await run_in_threadpool(message_view, self.config, raw)
        return self.render(request, "message.html", record=viewer.shown(record), rules=rule_rows(record),
                           view=view, actions=_allowed(viewer), max_text=MAX_TEXT,
                           back=_back(request))

    async def message_action(self, request: Request, viewer: Viewer) -> Response:
        form = await self.form(request)
        message_id = request.path_params["message_id"]
        await run_in_threadpool(self._record, viewer, message_id)
        action = str(form.get("action", ""))
        if action not in ACTIONS:
            raise HTTPException(400, "Unknown action.")
        try:
            done = await run_in_threadpool(self.apply, viewer, message_id, action)
        except Halted as halted:
            if not halted.shown:
                raise halted.error from None  # the 503 page (see unavailable)
            log.warning("user=%s action=%s id=%s: %s", viewer.name, action, message_id, halted.error)
            done = halted.outcome(message_id)  # an admin reads the reason, as before
        self.flash(request, done.line())
        return RedirectResponse(f"/message/{message_id}", 303)

    def apply(self, viewer: Viewer, message_id: str, action: str) -> Done:
        """Do one action as `viewer`; says what it did, for the user and the log. Halted for a
        failure that no other message would escape (see Halted)."""
        subject = None
        try:
            record = self._record(viewer, message_id)
            subject = str(record.get("subject") or "(no subject)")
            text, whole = self._do(viewer, record, action)
            done = Done(message_id, True, text, subject, whole)
        except HTTPException as exc:
            done = Done(message_id, False, "no such message" if exc.status_code == 404 else
                        str(exc.detail), subject)
        except QuarantineError as exc:
            if _halts(exc):
                raise Halted(exc, subject, _shown_to(viewer, exc)) from exc
            done = Done(message_id, False, str(exc) if _shown_to(viewer, exc) else REFUSED, subject)
            if done.text != str(exc):  # the reason, for the admin a user tells
                log.warning("user=%s action=%s id=%s: %s", viewer.name, action, message_id, exc)
        log.info("user=%s action=%s id=%s result=%s", viewer.name, action, message_id,
                 done.line() if done.ok else f"!{done.line()}")
        return done

    def _do(self, viewer: Viewer, record: dict[str, Any], action: str) -> tuple[str, bool]:
        """What `action` did, in words, and whether all of it was done (False: the mail went
        out, its learning failed, see _not_learned); QuarantineError when nothing was done."""
        message_id, who = record["id"], viewer.name
        if action not in viewer.actions:
            raise QuarantineError(f"{ACTIONS[action]} is not allowed for your login")
        if action == "delete":
            if not viewer.admin and not all(viewer.owns(a) for a in record["recipients"]):
                # Deleting removes the message for every recipient: a user would throw away
                # mail held for colleagues they cannot even see the list of.
                raise QuarantineError("it is held for other recipients too; only an admin can "
                                      "delete it")
            review.delete(self.store, message_id, who)
            return "Deleted.", True
        parts, sent = [], False
        if action in ("release", "release-ham"):
            said, sent = self._release(viewer, record, learning=action == "release-ham")
            parts.append(said)
        if action in LEARN or action == "release-ham":
            try:
                parts.append(self._learn(message_id, who, LEARN.get(action, "ham")))
            except QuarantineError as exc:
                if not sent:
                    raise  # nothing was done: the action failed
                return " ".join([*parts, self._not_learned(viewer, message_id, exc)]), False
        return " ".join(parts), True

    def _learn(self, message_id: str, who: str, mode: str) -> str:
        outcome = review.learn(self.config, self.store, message_id, who, mode)
        # "Learned (forget): ..." for a message taken back, or never learned, misled
        return (f"{outcome[0].upper()}{outcome[1:]}." if mode == "forget"
                else f"Learned ({mode}): {outcome}.")

    def _not_learned(self, viewer: Viewer, message_id: str, exc: QuarantineError) -> str:
        """Said after "Released to ..." when its learning failed (the Bayes store down). The
        action's line read "Not done (Bayes store unavailable: ...)" to an admin, and a user got
        the 503 page ("could not be done"): neither said the mail had gone out, and its reviewer
        took it for still held. The reason goes where an admin reads reasons: an admin's flash,
        and the log for every reviewer's (a user's names no server, see _shown_to)."""
        reason = str(exc).rstrip(".")
        log.warning("%s: released, but not learned as ham: %s.", message_id, reason)
        shown = reason if _shown_to(viewer, exc) else NOT_ANSWERED
        return f"Not learned as ham: {shown}. {LEARN_AGAIN}"

    def _release(self, viewer: Viewer, record: dict[str, Any],
                 learning: bool = False) -> tuple[str, bool]:
        """Release as `viewer` may, once per recipient. A second release said "(release again
        on purpose: --again)", an option of the command this page does not have: a user cannot
        use it at all, and an admin is told the command that does. A second release is refused,
        but not when `learning` (Release + learn as ham): the message is out already, and the
        refusal also stopped the ham learning its reviewer asked for, so it is said and the
        learning goes on. Also says whether the mail was sent now."""
        try:
            delivered = review.release(self.config, self.store, record["id"], viewer.name,
                                       viewer.release_to(record))
        except review.AlreadyReleased as exc:
            again = (f" (one more copy: mailsift quarantine release {record['id']} --again)"
                     if viewer.admin else "")
            said = f"{exc.before()}; not sent again{again}"
            if learning:
                return f"{said[0].upper()}{said[1:]}.", False
            raise QuarantineError(said) from None
        return f"Released to {', '.join(delivered) or 'nobody'}.", True

    async def error_page(self, request: Request, exc: Exception) -> Response:
        """A refusal (404, 403, a damaged record's 500) as a page of the UI, with its header and
        a way back. It was a bare line of text: a user who followed a digest's link to a message
        since expired, or deleted, had no link anywhere but the browser's Back. The header is a
        logged-in user's on every path: a mistyped address (no page's route, so no login was
        looked up) showed none, and with it no Log out."""
        assert isinstance(exc, HTTPException)
        if getattr(request.state, "viewer", None) is None:
            request.state.viewer = await run_in_threadpool(self._header_viewer, request)
        text = exc.detail if isinstance(exc.detail, str) else "Error"
        return self.render(request, "error.html", exc.status_code, code=exc.status_code,
                           text=text, back=_back(request))

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        """The index could not be read (Redis down, a wrong password), or an action's server
        failed for a user: a 503 the user can act on, and the reason in the log for the admin,
        instead of a 500 and a traceback per page. The page names no server: users are a hosting
        provider's customers. A logged-in user gets it in the UI's layout, with the header's Log
        out (which works without the index) and links for when it answers again: a bare line of
        text left her nothing to click. Her login is known by its cookie alone then (the index
        keeps the logouts, see `signed_viewer`); the page shows no message data. An admin's
        also gives the reason the log has: sent to the server's log for it, an admin at the
        browser could not tell a stopped Redis from a full disk or a file the web UI may not
        write. Only pages behind the login read the index, so a request gets here with a cookie
        that `signed_viewer` passed; one that expires in between gets the page without a header,
        as a refusal does (a plain-text answer kept for it alone was dead code). The reason goes
        only to a login not logged out (see `_logged_in`), not to any cookie an admin's login
        signed."""
        log.warning("%s %s: %s", request.method, request.url.path, exc)
        viewer = getattr(request.state, "viewer", None) or self.signed_viewer(request)
        request.state.viewer = viewer
        admin = viewer is not None and viewer.admin \
            and await run_in_threadpool(self._logged_in, request, viewer)
        response = self.render(request, "error.html", 503, code=503, text=_unavailable_text(exc),
                               reason=str(exc) if admin else "",
                               back=_back(request))
        response.headers["Retry-After"] = "60"
        return response

    def _header_viewer(self, request: Request) -> Viewer | None:
        """Who the page header names on a path no login guards: the logged-in user, or while the
        index cannot say whether the login was logged out, the user its cookie proves (as the
        503 page does)."""
        try:
            return self.viewer(request)
        except QuarantineError:
            return self.signed_viewer(request)

    # --- stats and lists ------------------------------------------------------------------------

    async def stats_page(self, request: Request, viewer: Viewer) -> Response:
        """The viewer's own quarantine by day, outcome and rule (an admin's: the whole site's),
        and for an admin what Bayes has learned. A user was shown the site's Bayes counts too:
        what every reviewer and `mailsift learn` taught, not hers to see (README: a user sees
        only mail to her own addresses)."""
        today = datetime.now(UTC).date()
        since = datetime.combine(today - timedelta(days=stats.DAYS - 1), datetime.min.time(), UTC)
        records, _ = await run_in_threadpool(self.store.search, Query(
            to=viewer.scope(), since=since, limit=None, include_deleted=True))
        counts = stats.per_day(records, today)
        return self.render(request, "stats.html", chart=stats.chart(counts),
                           legend=stats.legend(counts), rules=stats.top_rules(records),
                           bayes=await run_in_threadpool(self._bayes_totals) if viewer.admin
                           else None)

    def _bayes_totals(self) -> tuple[int, int] | None:
        """Read per page view and closed again: a store left open per view would keep its
        connections (to every node, for a Redis Cluster) until the garbage collector ran."""
        try:
            with closing(open_store(self.config.bayes)) as store:
                totals = store.totals()
        except StoreError:
            return None
        return totals.spam, totals.ham

    async def lists_page(self, request: Request, viewer: Viewer) -> Response:
        lists = await run_in_threadpool(self.store.backend.all_lists)
        # Without the network checks no welcome entry counts (README): a user added one and
        # nothing said it would do nothing.
        return self.render(request, "lists.html", lists=lists, kinds=LIST_KINDS,
                           proving=self.config.dns.enabled)

    async def change_list(self, request: Request, viewer: Viewer) -> Response:
        form = await self.form(request)
        address, kind = str(form.get("address", "")).lower(), str(form.get("kind", ""))
        if address not in viewer.addresses or kind not in LIST_KINDS:
            raise HTTPException(403, "Not one of your addresses.")
        typed, present = str(form.get("entry", "")), form.get("op") != "remove"
        try:
            if present:
                entry = list_entry(typed)
                held = await run_in_threadpool(self._spellings_held, address, kind, entry)
                stored = set() if held else {entry}
            else:
                entry, stored = await run_in_threadpool(self._spellings_kept, address, kind, typed)
        except ValueError as exc:
            self.flash(request, str(exc))
            return RedirectResponse("/lists", 303)
        if not stored:  # "Added"/"Removed" said a change was made, and the user looked no further
            self.flash(request, _unchanged(unicode_address(entry), kind, address, present))
            return RedirectResponse("/lists", 303)
        for spelling in stored:
            await run_in_threadpool(self.store.backend.set_listed, address, kind, spelling, present)
        log.info("user=%s %s %s list of %s: %s", viewer.name, "added to" if present else "removed from",
                 kind, address, entry)
        self.flash(request, f"{'Added' if present else 'Removed'} {unicode_address(entry)} "
                   f"{'to' if present else 'from'} the {kind} list of {address}.")
        return RedirectResponse("/lists", 303)

    def _spellings_kept(self, address: str, kind: str, typed: str) -> tuple[str, set[str]]:
        """What Remove of `typed` takes from the owner's list: its entry as `list_entry` makes
        it (shown and logged), and the entries stored that are it or another spelling of it
        (older versions kept entries as typed, spam.bücher.example, and Remove of either
        spelling must take them all); none when the list holds neither. An entry an older
        version stored that `list_entry` now refuses (1.2.3.4) matches nothing, and Remove ran
        `list_entry` first, so it could never go: the entry stored exactly as sent is taken
        then. Picked from what is stored, so nothing the form sent is passed on unless the list
        holds it; ValueError for anything else refused."""
        if entry_problem(typed) and typed in self._held(address, kind):
            return typed, {typed}
        entry = list_entry(typed)
        return entry, self._spellings_held(address, kind, entry)

    def _spellings_held(self, address: str, kind: str, entry: str) -> set[str]:
        """The entries of the owner's list that are `entry` (as `list_entry` makes it) in any
        spelling: the scanner reads an older version's spam.bücher.example as the entry
        spam.xn--bcher-kva.example (rules.checks.userlists), so either is that entry listed."""
        return {e for e in self._held(address, kind) if _as_entry(e) == entry}

    def _held(self, address: str, kind: str) -> set[str]:
        kept = self.store.backend.all_lists().get(address)
        return kept.entries(kind) if kept else set()


@dataclass(frozen=True)
class Done:
    """What one action did to one message."""

    message_id: str
    ok: bool
    text: str  # what happened, or why not, without the id
    subject: str | None  # how its reviewer knows the message; None when it could not be read
    whole: bool = True  # False: done in part (released, not learned), as `text` says
    failed_as: str = "Not done"  # how a bulk report heads a failure (see Halted.outcome)

    def line(self) -> str:
        """The text as the message's own page flashes it (and the log gives it)."""
        return self.text if self.ok else f"{self.message_id}: {self.text}"


class Halted(Exception):
    """A failure of one message's action that every message after it would meet too: the index
    down, the release port not answering, the Bayes store failing (see _halts). A bulk action
    stops there (Pages._apply_all), for an admin as for a user. An admin's went on: each later
    message met the same failure (a release port that hangs held each one SMTP_TIMEOUT_S, 30 s),
    and the report repeated one reason for every message, while a user's stopped at the first.
    What differs between them is only the words: an admin reads the reason, which names the
    server (`shown`), a user not (see _shown_to). The message's own page flashes an admin's
    reason and gives a user the 503 page (Pages.unavailable). A refusal of one message (Refused:
    a recipient, its size) is not this: both go on past it."""

    def __init__(self, error: QuarantineError, subject: str | None, shown: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.subject = subject  # None: its record was not read yet, so nothing was done to it
        self.shown = shown

    def outcome(self, message_id: str) -> Done:
        """What became of the message it met, as far as can be told. A failed server (the
        release port, the Bayes store) refuses before anything is done; the index going down
        after its record was read may leave a release sent, or a learning made, that its
        history does not record, but not when a release had not begun (NothingSent), which
        the report called "Unsure" too, of mail that was not sent."""
        if not isinstance(self.error, IndexUnavailable):
            return Done(message_id, False, str(self.error) if self.shown else NOT_ANSWERED,
                        self.subject)
        if self.subject is None or isinstance(self.error, review.NothingSent):
            return Done(message_id, False, INDEX_DOWN, self.subject)
        return Done(message_id, False, INDEX_LOST, self.subject, failed_as="Unsure")


BULK_NAMED = 3  # messages named per outcome of a bulk action; the rest are counted
# Cookie bytes of outcomes listed (see cookie_size): the report travels in the session cookie,
# which a browser drops (logging its user out) past 4 KB, in base64 (4 bytes for 3) beside the
# list's address (MAX_BACK) and the login's own fields (some 250 bytes).
BULK_BYTES = 1500
SUBJECT_SHOWN = 50


def bulk_report(label: str, results: list[Done]) -> list[str]:
    """The flash of a bulk action: how many were done, then each outcome with the messages it
    befell, by subject. It said only "Release: 4 of 5 done" and the ids of the failures: which
    went to whom, which a learn left as they were, and which message failed went unsaid."""
    outcomes: dict[tuple[bool, str, str], list[str]] = {}
    for done in results:
        outcomes.setdefault((done.ok, done.failed_as, done.text.rstrip(".")), []).append(_named(done))
    lines = [f"{text}: {_names(names)}" if ok else f"{failed_as} ({text}): {_names(names)}"
             for (ok, failed_as, text), names in outcomes.items()]
    totals = accumulate(map(cookie_size, lines))  # the report's size, line by line
    shown = next((n for n, total in enumerate(totals) if total > BULK_BYTES), len(lines))
    if shown < len(lines):
        lines[shown:] = [f"and {len(lines) - shown} other outcome(s): see the messages' history"]
    ok = sum(done.ok for done in results)
    partly = sum(done.ok and not done.whole for done in results)
    in_part = f", {partly} of them only in part" if partly else ""
    return [f"{label}: {ok} of {len(results)} done{in_part}.", *lines]


def cookie_size(text: str) -> int:
    """The bytes `text` takes in the session cookie before its base64: Starlette writes the
    session as JSON in ASCII, a letter outside it as 6 bytes ("\\u0421"). Counted in characters,
    a report of subjects in Cyrillic came to some 10 KB, which the browser dropped with the login."""
    return len(json.dumps(text))


def _named(done: Done) -> str:
    if done.subject is None:
        return done.message_id
    subject = done.subject
    return f"“{subject if len(subject) <= SUBJECT_SHOWN else subject[:SUBJECT_SHOWN - 1] + '…'}”"


def _names(names: list[str]) -> str:
    more = len(names) - BULK_NAMED
    return ", ".join(names[:BULK_NAMED]) + (f" and {more} more" if more > 0 else "")


def _unchanged(entry: str, kind: str, address: str, adding: bool) -> str:
    """The flash for an Add or Remove that found nothing to do: the list held the entry already,
    or did not hold it. Saying "Added" then made a user believe a change was made."""
    if adding:
        return f"{entry} is already in the {kind} list of {address}; nothing was added."
    return f"{entry} was not in the {kind} list of {address}; nothing was removed."


def _as_entry(stored: str) -> str:
    """A stored list entry as `list_entry` writes it now; '' for one it would refuse."""
    try:
        return list_entry(stored)
    except ValueError:
        return ""


def _state(record: dict[str, Any]) -> str:
    """A message's state in the list, in words for a release that was not recorded
    (review.release; the message page says when, to whom and why)."""
    return state_word(record, MAY_HAVE_BEEN_RELEASED)


def _allowed(viewer: Viewer) -> dict[str, str]:
    """The action buttons this viewer gets: only what web.user_actions lets them do."""
    return {key: label for key, label in ACTIONS.items() if key in viewer.actions}


def _halts(exc: QuarantineError) -> bool:
    """Whether every message after this one would fail as well (see Halted): a server that
    failed, not one that refused this message alone (Refused)."""
    return isinstance(exc, ServerFailed) and not isinstance(exc, Refused)


def _shown_to(viewer: Viewer, exc: QuarantineError) -> bool:
    """Whether the reason an action failed may be shown to this viewer. A failed server's
    reason names it (Redis URL, release host:port): admins read it, a user (a hosting provider's
    customer) gets the 503 page (in a bulk report NOT_ANSWERED), or REFUSED for a message the
    release port refused. A down index is that page for everyone: no action can work."""
    if isinstance(exc, IndexUnavailable):
        return False
    return viewer.admin or not isinstance(exc, ServerFailed)


def _page(text: str) -> int:
    """The page asked for; 1 for anything else. Only ASCII digits, and few enough that the
    offset fits the index's integers: "²" or 5,000 digits raised (a 500), and 20 digits
    overflowed SQLite's integer, reported as the index being down (a 503 and a warning)."""
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_PAGE_DIGITS else 1
    return max(number, 1)


def _number(text: str) -> float | None:
    try:
        number = float(text) if text else None
    except ValueError:
        return None
    return number if number is None or math.isfinite(number) else None


def _not_yours(viewer: Viewer, to: str, query: Query) -> list[str]:
    """Why a user's search by "To" lists nothing: it names none of her addresses (a colleague's,
    or a domain none of hers is in). It said "No messages match.", as if that mail were not held."""
    if viewer.admin or not to or query.to:
        return []
    return [f"To {to!r} is none of your addresses ({', '.join(viewer.addresses)}); you see only "
            "mail to them."]


def _unused_filters(params: dict[str, str]) -> list[str]:
    """What the search left out, and why: a min. score or a time it cannot read. It searched
    without them, and the list said nothing, so "abc" or "yesterday" looked as if it held."""
    unused = []
    if params["min_score"] and _number(params["min_score"]) is None:
        unused.append(f"Min. score {params['min_score']!r} is not a number, e.g. 8 or 12.5; the "
                      "list is not filtered by score.")
    if params["since"] and _since(params["since"]) is None:
        unused.append(f"Since {params['since']!r}: use {SINCE_FORMS}; the list is not filtered "
                      "by time.")
    return unused


def _since(text: str) -> datetime | None:
    try:
        return parse_since(text) if text else None
    except ValueError:
        return None


def _back(request: Request) -> str:
    """Where "Back to the list" leads: the list as it was last shown (search, sort, page; see
    list_page), or the list's start."""
    return _local(str(request.session.get("list", "/")))


def _local(url: str) -> str:
    """Only redirect within this site (no //evil.example, no scheme)."""
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else "/"


def _unavailable_text(exc: Exception) -> str:
    """What a user reads on the 503 page. A failed release or learn (the release port, the
    Bayes store) read "The quarantine is unavailable right now" too, while the list beside it
    loaded: the user took their mail for gone, or the quarantine for down."""
    if isinstance(exc, ServerFailed) and not isinstance(exc, IndexUnavailable):
        return ("That could not be done right now: a server it needs did not answer. Try again "
                "in a few minutes; if it keeps failing, tell your mail administrator.")
    return "The quarantine is unavailable right now; try again in a few minutes."


def create_app(config: Config, store: QuarantineStore, secret: str) -> Starlette:
    pages = Pages(config, store)
    guard = pages.login_required
    routes = [
        Route("/login", pages.login_page, methods=["GET"]),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Route("/", guard(pages.list_page), methods=["GET"]),
        Route("/bulk", guard(pages.bulk), methods=["POST"]),
        Route("/message/{message_id}", guard(pages.message_page), methods=["GET"]),
        Route("/message/{message_id}", guard(pages.message_action), methods=["POST"]),
        Route("/stats", guard(pages.stats_page), methods=["GET"]),
        Route("/lists", guard(pages.lists_page), methods=["GET"]),
        Route("/lists", guard(pages.change_list), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(Sessions, secure=config.web.secure_cookies, secret_key=secret,
                   session_cookie=SESSION_COOKIE, max_age=config.web.session_minutes * 60,
                   same_site="strict"),
    ]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: pages.error_page,
                                         QuarantineError: pages.unavailable})
