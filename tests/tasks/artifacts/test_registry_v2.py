"""The Docker Registry v2 client against the real reference registry: tags and digests
anonymously, and through the token-auth flow with a user name and password; a wrong
password or a missing repository is one line that names it and never the password."""

from __future__ import annotations

import pytest

from tasks.artifacts.choose import NoSuchTag, Tag, fixed, nearby, newest
from tasks.artifacts.registry_v2 import Login, RegistryClient, RegistryError
from testkit.registry import Registry


async def test_anonymous_tags_and_the_digest_of_each(open_registry: Registry) -> None:
    pushed = {tag: open_registry.push("myorg/app", tag) for tag in ("1.0.0", "1.2.0", "dev")}
    async with RegistryClient(open_registry.url, "myorg/app") as client:
        assert sorted(await client.tags()) == ["1.0.0", "1.2.0", "dev"]
        assert await client.digest("1.2.0") == pushed["1.2.0"]
        assert pushed["1.2.0"] != pushed["1.0.0"]
    async with RegistryClient(open_registry.url, "myorg/nothing") as client:
        with pytest.raises(RegistryError, match="repository 'myorg/nothing' does not exist"):
            await client.tags()


async def test_token_auth_with_user_and_password(token_registry: Registry) -> None:
    digest = token_registry.push("team/api", "2.0.1")
    assert token_registry.tokens is not None
    login = Login(token_registry.tokens.username, token_registry.tokens.password)
    async with RegistryClient(token_registry.url, "team/api", login) as client:
        assert await client.tags() == ["2.0.1"]
        assert await client.digest("2.0.1") == digest
    async with RegistryClient(token_registry.url, "team/api",
                              Login("deployer", "wrong-password")) as client:
        with pytest.raises(RegistryError) as refused:
            await client.tags()
    assert "token service refused user deployer (401)" in str(refused.value)
    assert "wrong-password" not in str(refused.value)
    async with RegistryClient(token_registry.url, "team/api") as client:
        with pytest.raises(RegistryError, match="refused anonymous access for team/api"):
            await client.tags()
    public = token_registry.push("public/base", "1.0")
    async with RegistryClient(token_registry.url, "public/base") as client:  # Hub's flow
        assert await client.tags() == ["1.0"]
        assert await client.digest("1.0") == public


def test_a_missing_fixed_tag_names_the_tags_nearby() -> None:
    tags = [Tag(t) for t in ("1.27.1", "1.27.2", "1.27.4", "1.28.0", "latest", "2.0.0")]
    with pytest.raises(NoSuchTag) as missing:
        fixed(tags, "1.27.3", "library/nginx")
    message = str(missing.value)
    assert message.startswith("library/nginx: tag '1.27.3' does not exist; tags nearby: ")
    assert {"1.27.2", "1.27.4"} <= set(message.split(": ")[-1].split(" (")[0].split(", "))
    assert nearby(["b", "a"], "c") == ["a", "b"]


def test_tag_regex_newest_by_push_time_else_by_version() -> None:
    versions = [Tag("1.9.0"), Tag("1.10.0"), Tag("1.2.0"), Tag("dev")]
    assert newest(versions, r"1\.\d+\.\d+", "r").name == "1.10.0"
    pushed = [Tag("1.10.0", "sha256:a", 100.0), Tag("1.9.0", "sha256:b", 200.0)]
    assert newest(pushed, r"1\..*", "r").name == "1.9.0"
    with pytest.raises(NoSuchTag) as none:
        newest(versions, "3.*", "r")
    assert str(none.value) == ("r: no tag matches tagRegex '3.*'; newest tags: 1.2.0, 1.9.0, "
                               "1.10.0, dev")
