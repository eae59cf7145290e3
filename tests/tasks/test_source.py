"""validate_source: our own allow-list, before git sees anything. DNS is a fake resolver except
for ``localhost``, which the real ``socket.getaddrinfo`` answers from /etc/hosts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tasks.errors import InvalidSource
from tasks.source import (
    SettingNames,
    Source,
    SourcePolicy,
    path_component_problem,
    ref_problem,
    scrub_url,
    validate_source,
)

PUBLIC = "140.82.112.3"
DEFAULT = SourcePolicy()


def resolver_to(*addresses: str):  # type: ignore[no-untyped-def]
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return list(addresses)

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def refused(url: str, ref: str | None = None, subdir: str | None = None,
            policy: SourcePolicy = DEFAULT, addresses: tuple[str, ...] = (PUBLIC,)) -> str:
    with pytest.raises(InvalidSource) as info:
        validate_source(url, ref, subdir, policy, resolver=resolver_to(*addresses))
    assert info.value.status == 400
    return info.value.message


def test_public_https_url_is_accepted_and_pins_the_resolved_addresses() -> None:
    resolve = resolver_to(PUBLIC, "2606:50c0:8000::153")
    source = validate_source(
        "https://github.com:8443/org/repo.git", "main", "tasks/one/", DEFAULT, resolver=resolve
    )
    assert source == Source(
        url="https://github.com:8443/org/repo.git",
        ref="main",
        subdir="tasks/one",
        is_local=False,
        addresses=(PUBLIC, "2606:50c0:8000::153"),
    )
    assert resolve.calls == [("github.com", 8443)]  # type: ignore[attr-defined]


def test_default_port_is_resolved_and_ref_and_subdir_are_optional() -> None:
    resolve = resolver_to(PUBLIC)
    source = validate_source("https://example.org/r", None, None, DEFAULT, resolver=resolve)
    assert (source.ref, source.subdir, source.is_local) == (None, None, False)
    assert resolve.calls == [("example.org", 443)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ext::sh -c touch% /tmp/SENTINEL", "whitespace"),
        ("ext::sh", "remote-helper"),
        ("fd::17", "remote-helper"),
        ("https::github.com/x", "remote-helper"),
        ("https://github.com/a::b", "remote-helper"),
        ("ssh://github.com/x/y.git", "scheme 'ssh'"),
        ("git://github.com/x/y.git", "scheme 'git'"),
        ("ftp://github.com/x", "scheme 'ftp'"),
        ("git@github.com:org/repo.git", "scp-style"),
        ("github.com:org/repo.git", "scp-style"),
        ("--upload-pack=touch", "start with '-'"),
        ("-uhttps://github.com/x", "start with '-'"),
        ("https://github.com/x%2F..%2Fy", "'%'"),
        ("https://github.com/$HOME", "'$'"),
        ("https://github.com/`id`", "backtick"),
        ("https://github.com/a b", "whitespace"),
        ("https://github.com/a\tb", "control character"),
        ("https://github.com/a\nb", "control character"),
        ("https://github.com/a\x00b", "control character"),
        ("https://github.com/a\u2028b", "whitespace"),
        ("https://github.com/x?token=abc", "query string"),
        ("https://github.com/x#frag", "query string"),
        ("https:///x.git", "no host"),
        ("https://github.com:99999/x", "invalid port"),
        ("https://git_hub.com/x", "not a valid host name"),
        ("https://[::1/x", "remote-helper"),
        ("https://[fe80/x", "cannot be parsed"),
        ("https://[::1]::/x", "remote-helper"),
        ("https://github.com/a/../b", "URL path"),
        ("https://github.com/a;b", "URL path"),
        ("", "empty"),
        ("https://github.com/" + "a" * 3000, "longer than"),
    ],
)
def test_hostile_or_malformed_urls_are_refused_with_a_reason(url: str, expected: str) -> None:
    assert expected in refused(url)


@pytest.mark.parametrize(
    "url",
    ["https://user:hunter2@github.com/x.git", "https://ghp_SECRETTOKEN@github.com/x.git"],
)
def test_credentials_are_refused_and_never_echoed(url: str) -> None:
    message = refused(url)
    assert "credentials" in message
    assert "hunter2" not in message and "SECRETTOKEN" not in message


def test_plain_http_needs_allow_http_and_an_allow_listed_host() -> None:
    assert "http://" in refused("http://git.internal/x.git")
    assert "http://" in refused(
        "http://git.internal/x.git", policy=SourcePolicy(allow_http=True)
    )
    assert "http://" in refused(
        "http://git.internal/x.git", policy=SourcePolicy(allowed_hosts=frozenset({"git.internal"}))
    )
    policy = SourcePolicy(allow_http=True, allowed_hosts=frozenset({"git.internal"}))
    source = validate_source(
        "http://git.internal:8080/x.git", None, None, policy, resolver=resolver_to("10.1.2.3")
    )
    assert source.addresses == ("10.1.2.3",)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1",  # noqa: S104 - an address to refuse, not to bind "240.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1",
        "::ffff:127.0.0.1", "2002:7f00:1::", "ff02::1", "::",
    ],
)
def test_a_host_resolving_to_a_non_public_address_is_refused(address: str) -> None:
    assert "non-public address" in refused("https://innocent.example.com/x", addresses=(address,))


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    message = refused("https://mixed.example.com/x", addresses=(PUBLIC, "10.0.0.1"))
    assert "10.0.0.1" in message


def test_real_localhost_resolution_is_refused_unless_allow_listed() -> None:
    with pytest.raises(InvalidSource, match="non-public"):
        validate_source("https://localhost/x.git", None, None, DEFAULT)
    with pytest.raises(InvalidSource, match="non-public"):
        validate_source("https://127.0.0.1:8443/x.git", None, None, DEFAULT)
    with pytest.raises(InvalidSource, match="non-public"):
        validate_source("https://[::1]/x.git", None, None, DEFAULT)
    allowed = SourcePolicy(allowed_hosts=frozenset({"localhost", "[::1]"}))
    source = validate_source("https://localhost/x.git", None, None, allowed)
    assert "127.0.0.1" in source.addresses or "::1" in source.addresses
    assert validate_source("https://[::1]/x.git", None, None, allowed).addresses == ("::1",)


def test_an_unresolvable_host_is_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(InvalidSource, match="does not resolve"):
        validate_source("https://nowhere.example.com/x", None, None, DEFAULT, resolver=fail)
    with pytest.raises(InvalidSource, match="does not resolve"):
        validate_source(
            "https://nowhere.example.com/x", None, None, DEFAULT, resolver=resolver_to()
        )


NAMES = SettingNames(allow_local="set LOCAL=true", allow_http="set HTTP=true",
                     allowed_hosts="add {host!r} to HOSTS")


def test_local_paths_need_allow_local(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "repo")
    policy = SourcePolicy(names=NAMES)
    for url in (str(tmp_path / "repo"), f"file://{tmp_path / 'repo'}", str(tmp_path / "link"),
                "file:///etc", "/etc", "../../etc", "repo/../../..", "./link"):
        assert refused(url, policy=policy) == (
            "local paths and file:// URLs are refused: the operator can set LOCAL=true")


def test_each_refusal_names_what_would_allow_it() -> None:
    policy = SourcePolicy(names=NAMES)
    assert refused("http://git.internal/x.git", policy=policy).endswith(
        "the operator can set HTTP=true, which takes it from allow-listed hosts only")
    http = SourcePolicy(allow_http=True, names=NAMES)
    assert refused("http://git.internal/x.git", policy=http).endswith(
        "the operator can add 'git.internal' to HOSTS")
    # a private network: the allow-list or allow_local; link-local: only the allow-list
    assert refused("https://git.internal/x", policy=policy, addresses=("10.0.0.5",)).endswith(
        "the operator can add 'git.internal' to HOSTS, or set LOCAL=true")
    assert refused("https://meta.internal/x", policy=policy,
                   addresses=("169.254.169.254",)).endswith(
        "the operator can add 'meta.internal' to HOSTS")


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "172.16.3.4", "192.168.1.1",
                                     "::1", "fc00::1", PUBLIC])
def test_allow_local_opens_loopback_and_private_networks(address: str) -> None:
    policy = SourcePolicy(allow_local=True)
    source = validate_source("https://git.internal/x.git", None, None, policy,
                             resolver=resolver_to(address))
    assert source.addresses == (address,) and not source.is_local


@pytest.mark.parametrize("address", ["169.254.169.254", "fe80::1", "100.64.0.1", "0.0.0.0",  # noqa: S104
                                     "224.0.0.1", "240.0.0.1", "ff02::1", "::",
                                     "::ffff:169.254.169.254", "fd00:ec2::254"])
def test_allow_local_keeps_link_local_and_reserved_addresses_closed(address: str) -> None:
    policy = SourcePolicy(allow_local=True, names=NAMES)
    message = refused("https://meta.internal/x", policy=policy, addresses=(address,))
    assert "non-public address" in message and "LOCAL" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ext::sh -c touch% /tmp/pwned", "the URL contains"),
        ("ext::sh%20-c%20id", "the URL contains"),
        ("ext::sh", "remote-helper"),
        ("fd::17", "remote-helper"),
        ("file::/etc", "remote-helper"),
        ("https://user:hunter2@127.0.0.1/x.git", "credentials"),
        ("ssh://git@127.0.0.1/x.git", "scheme"),
        ("git@127.0.0.1:x.git", "scp-style"),
        ("git://127.0.0.1/x.git", "scheme"),
        ("file:///etc?x=1", "file:///absolute/path"),
        ("http://127.0.0.1/x.git", "http://"),
        ("-u/tmp", "'-'"),
    ],
)
def test_allow_local_never_allows_dangerous_transports(url: str, expected: str) -> None:
    message = refused(url, policy=SourcePolicy(allow_local=True), addresses=("127.0.0.1",))
    assert expected in message and "hunter2" not in message


def test_local_paths_resolve_to_an_absolute_file_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "link").symlink_to(repo)
    policy = SourcePolicy(allow_local=True, relative_paths=True)  # the CLI's
    monkeypatch.chdir(tmp_path)
    expected = f"file://{repo.resolve()}"
    for url in ("repo", "./link/", str(repo), f"file://{repo}", f"file://localhost{repo}"):
        source = validate_source(url, "main", None, policy)
        assert (source.url, source.is_local, source.addresses) == (expected, True, ())
    # The web's policy: absolute paths only, a relative one refused as a missing one is.
    web = SourcePolicy(allow_local=True)
    for url in (str(repo), f"file://{repo}"):
        assert validate_source(url, "main", None, web).url == expected
    assert refused("repo", policy=web) == (
        "the local path 'repo' is not an absolute path to a directory pairlab can read")


def test_local_path_must_be_an_existing_directory(tmp_path: Path) -> None:
    policy = SourcePolicy(allow_local=True)
    (tmp_path / "file.txt").write_text("x")
    # Refused alike, never saying which (missing, or a file): a refusal reveals nothing.
    for name in ("missing", "file.txt"):
        assert refused(str(tmp_path / name), policy=policy) == (
            f"the local path {str(tmp_path / name)!r} is not an absolute path to a directory"
            " pairlab can read")
    assert "is not a directory pairlab can read" in refused(
        str(tmp_path / "missing"), policy=SourcePolicy(allow_local=True, relative_paths=True))
    assert "file:///" in refused(f"file://otherhost{tmp_path}", policy=policy)
    assert "characters" in refused(f"{tmp_path}/a:b", policy=policy)


@pytest.mark.parametrize(
    "ref",
    ["main", "feature/x-1", "v1.2.3", "release_2024", "abc1234", "a" * 40, "refs/tags/v1",
     "refs/heads/main", "user@host", "x+y"],
)
def test_reasonable_refs_are_accepted(ref: str) -> None:
    assert ref_problem(ref) is None
    resolve = resolver_to(PUBLIC)
    source = validate_source("https://example.org/r", ref, None, DEFAULT, resolver=resolve)
    assert source.ref == ref


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("--upload-pack=touch SENTINEL", "whitespace"),
        ("--upload-pack=touch", "starts with '-'"),
        ("-b", "starts with '-'"),
        ("a..b", "'..'"),
        ("a@{1}", "'@{'"),
        ("a\\b", "'\\\\'"),
        ("a:b", "':'"),
        ("a?b", "'?'"),
        ("a*b", "'*'"),
        ("a[b", "'['"),
        ("a~1", "'~'"),
        ("a^", "'^'"),
        ("a b", "whitespace"),
        ("x.lock", ".lock"),
        ("x.lock/y", ".lock"),
        ("x/", "'/'"),
        ("/x", "'/'"),
        ("x.", "ends with '.'"),
        (".x", "starts with '.'"),
        ("a/.b", "starts with '.'"),
        ("a//b", "'//'"),
        ("@", "'@' alone"),
        ("a\x01b", "control character"),
        ("a\x7fb", "control character"),
        ("$x", "'$'"),
        ("%2e", "'%'"),
        ("`x`", "backtick"),
        ("ma\u00efn", "outside"),
        ("a;b", "outside"),
        ("", "empty"),
        ("x" * 256, "255"),
    ],
)
def test_hostile_refs_are_refused(ref: str, expected: str) -> None:
    assert expected in refused("https://example.org/r", ref=ref)


@pytest.mark.parametrize(("subdir", "expected"), [("a/b/", "a/b"), ("/", None), ("./", None),
                                                  ("task", "task"), ("", None)])
def test_subdir_is_normalised(subdir: str, expected: str | None) -> None:
    if subdir == "/":
        assert "relative" in refused("https://example.org/r", subdir=subdir)
        return
    source = validate_source("https://example.org/r", None, subdir, DEFAULT,
                             resolver=resolver_to(PUBLIC))
    assert source.subdir == expected


@pytest.mark.parametrize(
    ("subdir", "expected"),
    [("../x", "'..'"), ("a/../b", "'..'"), ("/etc", "relative"), ("a//b", "''"),
     ("a/./b", "'.'"), ("a\x00b", "control"), ("a b", "whitespace"), (".git", ".git"),
     ("a/.GIT/x", ".git"), ("a\\b", "backslash"), ("$x", "'$'")],
)
def test_hostile_subdirs_are_refused(subdir: str, expected: str) -> None:
    assert expected in refused("https://example.org/r", subdir=subdir)


@pytest.mark.parametrize(
    "name",
    [".git", ".GIT", ".Git", ".git.", ".git ", ".git . .", "git~1", "GIT~1",
     ".git::$INDEX_ALLOCATION", ".git:stream", ".g\u200cit", "\ufeff.git", "..", ".", "",
     "a\\b", "a\nb", "a\x1bb", "x" * 256],
)
def test_path_component_problem_refuses_git_lookalikes_and_odd_names(name: str) -> None:
    assert path_component_problem(name) is not None


@pytest.mark.parametrize("name", [".gitignore", ".github", "x.git", ".gitmodules", "git", "a:b",
                                  "ünïcode.py", ".hidden", "..."])
def test_path_component_problem_accepts_ordinary_names(name: str) -> None:
    assert path_component_problem(name) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pw@github.com:8443/x.git?token=1#f", "https://github.com:8443/x.git"),
        ("https://github.com/x.git", "https://github.com/x.git"),
        ("http://tok@127.0.0.1:9/r", "http://127.0.0.1:9/r"),
        ("git@github.com:org/repo.git", "github.com:org/repo.git"),
        ("/srv/repo", "/srv/repo"),
        ("https://[::1", "<unparseable url>"),
    ],
)
def test_scrub_url_removes_userinfo_and_query(url: str, expected: str) -> None:
    assert scrub_url(url) == expected
