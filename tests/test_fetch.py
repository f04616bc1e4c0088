"""Polite downloading against a local server: one outcome per URL, with the right reason."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from safeset.fetch import (
    USER_AGENT,
    Fetched,
    FetchOptions,
    _is_public,
    fetch,
    map_ordered,
    opt_out,
    tdm_reserved,
)

from .urlserver import BIG_BYTES, ImageServer, closed_port_url, serving

IMAGE = b"\xff\xd8\xff\xe0 pretend jpeg bytes \xff\xd9"
FAST = FetchOptions(timeout=1.0, retries=2, max_bytes=BIG_BYTES // 2, threads=4, backoff=0.01)


@pytest.fixture(scope="module")
def server() -> Iterator[ImageServer]:
    with serving({"a.jpg": IMAGE}) as s:
        yield s


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/img/a.jpg", None),
        ("/redirect/a.jpg", None),
        ("/moved/a.jpg", None),
        ("/otherbot/a.jpg", None),
        ("/missing", "http 404"),
        ("/error", "http 500"),
        ("/down", "http 503"),
        ("/busy", "http 429"),
        ("/loop", "too many redirects (over 5)"),
        ("/slow", "timeout: no answer within 1s"),
        ("/big", f"too large: {BIG_BYTES} bytes announced, limit {BIG_BYTES // 2}"),
        ("/big-stream", f"too large: over the limit of {BIG_BYTES // 2} bytes"),
        ("/optout/a.jpg", "skipped: opt-out (X-Robots-Tag noai)"),
        ("/optout-ua/a.jpg", "skipped: opt-out (X-Robots-Tag noimageai)"),
        ("/tdm/a.jpg", "skipped: opt-out (tdm-reservation: 1)"),
        ("/tdm-open/a.jpg", None),
    ],
)
def test_each_url_ends_with_bytes_or_its_reason(
    server: ImageServer, path: str, error: str | None
) -> None:
    got = fetch(server.url(path), FAST)
    assert got.error == error
    assert got.data == (IMAGE if error is None else None)


def test_a_dribbled_answer_is_abandoned_at_the_deadline(server: ImageServer) -> None:
    """Headers arriving a byte every 0.1 s never trip a per-read timeout; the whole answer
    must come within --timeout (the server would take 5 minutes to finish them)."""
    got = fetch(server.url("/dribble"), FetchOptions(timeout=1.0, retries=0))
    assert got == Fetched(error="timeout: no answer within 1s")


@pytest.mark.parametrize(
    ("path", "error"), [("/odd-retry", "http 503"), ("/odd-length/a.jpg", None)]
)
def test_headers_with_non_ascii_digits_are_ignored(
    server: ImageServer, path: str, error: str | None
) -> None:
    # "²".isdigit() is True but int("²") raises: such a header counts as absent.
    got = fetch(server.url(path), FAST)
    assert got.error == error
    assert got.data == (IMAGE if error is None else None)


def test_html_page_is_fetched_and_left_to_the_decoder(server: ImageServer) -> None:
    # Content-Type is not trusted either way: the decoder says "not an image" (and exact hashes
    # of mislabelled files still match).
    got = fetch(server.url("/page"), FAST)
    assert got.error is None and got.data.startswith(b"<html>")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (None, "no url"),
        ("   ", "no url"),
        ("ftp://example.org/a.jpg", "invalid url: not an http(s) url: scheme ftp"),
        ("just some text", "invalid url: not an http(s) url: scheme missing"),
    ],
)
def test_unusable_urls_are_errors_without_any_request(url: str | None, error: str) -> None:
    assert fetch(url, FAST).error == error


def test_refused_connection_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    import safeset.fetch as fetch_module

    attempts = []
    real = fetch_module._attempt
    monkeypatch.setattr(fetch_module, "_attempt", lambda *a: attempts.append(1) or real(*a))
    got = fetch(closed_port_url(), FAST)
    assert got.error is not None and got.error.startswith("connection error: ")
    assert len(attempts) == FAST.retries + 1


def test_transient_statuses_are_retried_with_backoff(server: ImageServer) -> None:
    before = dict(server.hits)
    assert fetch(server.url("/flaky/a.jpg"), FAST).data == IMAGE
    assert fetch(server.url("/down"), FAST).error == "http 503"
    assert fetch(server.url("/busy"), FAST).error == "http 429"
    assert fetch(server.url("/missing"), FAST).error == "http 404"
    delta = {p: server.hits[p] - before.get(p, 0) for p in ("/flaky/a.jpg", "/down", "/busy")}
    # flaky: 503 then 200; down and busy: the first attempt plus FAST.retries.
    assert delta == {"/flaky/a.jpg": 2, "/down": 3, "/busy": 3}
    assert server.hits["/missing"] - before.get("/missing", 0) == 1  # 4xx is final


def test_no_retries_means_one_attempt(server: ImageServer) -> None:
    before = server.hits["/down"]
    fetch(server.url("/down"), FetchOptions(timeout=1.0, retries=0))
    assert server.hits["/down"] - before == 1


def test_user_agent_names_safeset(server: ImageServer) -> None:
    fetch(server.url("/img/a.jpg"), FAST)
    assert USER_AGENT in server.user_agents
    assert USER_AGENT.startswith("safeset/") and USER_AGENT.endswith("(+dataset audit)")


@pytest.mark.parametrize(
    ("values", "directive"),
    [
        (["noai"], "noai"),
        (["NoImageAI"], "noimageai"),
        (["noindex, noai"], "noai"),
        (["safeset: noai"], "noai"),
        (["otherbot: noai"], None),
        (["otherbot: noindex", "noimageai"], "noimageai"),
        (["noindex", "nofollow"], None),
        ([], None),
    ],
)
def test_opt_out_directives(values: list[str], directive: str | None) -> None:
    assert opt_out(values) == directive


@pytest.mark.parametrize(
    ("values", "reserved"),
    [(["1"], True), ([" 1 "], True), (["0"], False), (["yes"], False), ([], False)],
)
def test_tdm_reservation_values(values: list[str], reserved: bool) -> None:
    assert tdm_reserved(values) is reserved


def test_map_ordered_keeps_order_and_bounds_lookahead() -> None:
    pulled = 0

    def items() -> Iterator[int]:
        nonlocal pulled
        for n in range(100):
            pulled += 1
            yield n

    def work(n: int) -> int:
        time.sleep(0.001 * (n % 3))  # finish out of order
        return n * n

    results = map_ordered(work, items(), threads=4)
    assert next(results) == 0
    assert pulled <= 2 * 4  # never more than the window is taken from the source
    assert [0, *results] == [n * n for n in range(100)]


def test_redirects_never_lead_into_the_network_safeset_runs_in(server: ImageServer) -> None:
    """Invariant 7: a table's server may send safeset elsewhere, but not to a loopback, private
    or link-local address other than the table URL's own host and port."""
    with serving({"x.jpg": IMAGE}) as internal:
        port = internal.server_address[1]
        server.redirects |= {
            "admin": f"http://127.0.0.1:{port}/internal-admin",
            "named": f"http://localhost:{port}/img/x.jpg",
            "mapped": f"http://[::ffff:127.0.0.1]:{port}/img/x.jpg",
            "unspecified": f"http://0.0.0.0:{port}/img/x.jpg",
            "same-origin": server.url("/img/a.jpg"),
            "broken": "http://[::1/x.jpg",
        }
        outcomes = {name: fetch(server.url(f"/to/{name}"), FAST) for name in server.redirects}
        assert internal.hits == {}
    refused = "redirect to a non-public address refused"
    for name in ("admin", "named", "mapped", "unspecified"):
        assert outcomes[name].error.startswith(refused), (name, outcomes[name])
        assert outcomes[name].data is None
    assert outcomes["same-origin"] == fetch(server.url("/img/a.jpg"), FAST)
    assert outcomes["same-origin"].data == IMAGE
    assert outcomes["broken"].error.startswith("invalid url")


def test_a_table_url_may_name_a_private_host_itself(server: ImageServer) -> None:
    # The table's own URLs are the dataset's to choose (tests and intranets serve on 127.0.0.1).
    assert fetch(server.url("/img/a.jpg"), FAST).data == IMAGE


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    # Classified without any traffic: only loopback servers are ever contacted by the tests.
    assert _is_public(address) is public
