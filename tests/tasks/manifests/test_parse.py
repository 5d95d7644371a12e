from __future__ import annotations

import time

import pytest

from tasks.manifests import ManifestError
from tasks.manifests.parse import MAX_BYTES, parse_manifest

from .conftest import data


@pytest.mark.parametrize("name", [
    "RegisterTaskDefinitionRequest.json", "RegisterTaskDefinitionRequest.yaml",
    "CreateServiceRequest.yaml", "ScalableTarget.yaml", "ScalingPolicy.yaml",
    "RunTaskRequest.yaml", "BlueGreenServiceRequest.yaml",
])
def test_document_examples_parse(name: str) -> None:
    doc = parse_manifest(data(name), name)
    assert isinstance(doc, dict) and doc


def test_document_invalid_json_service_definition_gives_line_and_column() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data("CreateServiceRequest.invalid.json"), "CreateServiceRequest.json")
    err = info.value
    assert (err.file, err.line, err.column) == ("CreateServiceRequest.json", 3, 20)
    text = str(err)
    assert text.startswith("CreateServiceRequest.json:3:20: not valid JSON")
    assert "double quotes" in text
    assert '"serviceName": myapp,' in text  # the offending line is quoted


def test_misindented_yaml_from_the_document_is_located() -> None:
    # The document's first YAML example lost its indentation in publishing.
    with pytest.raises(ManifestError) as info:
        parse_manifest(data("RegisterTaskDefinitionRequest.misindented.yaml"), "td.yaml")
    assert (info.value.line, info.value.column) == (5, 2)
    assert "not valid YAML" in str(info.value)


def test_json_is_detected_even_in_a_yaml_named_file() -> None:
    # YAML would accept `myapp` as a plain scalar; a JSON document must not.
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest(b'{"serviceName": myapp}', "x.yaml")


def test_yaml_alias_bomb_fails_fast() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = "\n".join(levels) + "\n"
    started = time.monotonic()
    with pytest.raises(ManifestError) as info:
        parse_manifest(bomb, "bomb.yaml")
    assert time.monotonic() - started < 1
    assert "aliases" in str(info.value) and info.value.line == 2


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    "a: " + "[" * 100_000 + "]" * 100_000,
    "".join(" " * i + "k:\n" for i in range(1_000)),
])
def test_deep_nesting_fails_fast(text: str) -> None:
    started = time.monotonic()
    with pytest.raises(ManifestError, match="nesting deeper than 64 levels"):
        parse_manifest(text, "deep")
    assert time.monotonic() - started < 2


def test_brackets_in_strings_do_not_count_as_nesting() -> None:
    doc = parse_manifest('{"command": ["' + "[" * 500 + '"]}', "x.json")
    assert doc["command"][0] == "[" * 500


def test_huge_file_is_refused_before_parsing() -> None:
    with pytest.raises(ManifestError, match="over the 1048576-byte limit"):
        parse_manifest(b"a: 1\n" * (MAX_BYTES // 4), "big.yaml")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "file is empty"),
    (b"   \n", "file is empty"),
    (b"just a string", "holds a str"),
    (b"\xff\xfe\x00", "not UTF-8"),
    (b"a: 1\n---\nb: 2\n", "not valid YAML"),
])
def test_unusable_files(content: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        parse_manifest(content, "f")


def test_timestamps_stay_strings_and_bom_is_ignored() -> None:
    doc = parse_manifest("\ufeffcreatedAt: 2022-10-06T23:03:45Z\n".encode(), "x")
    assert doc == {"createdAt": "2022-10-06T23:03:45Z"}


def test_yaml_key_given_twice_names_the_key_and_both_lines() -> None:
    text = ("family: web\ncontainerDefinitions:\n  - name: app\n    image: nginx\n"
            "    memory: 256\n    image: httpd\n")
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "td.yaml")
    assert info.value.line == 6
    assert "'image' is given twice, on lines 4 and 6" in str(info.value)


def test_yaml_key_given_twice_on_one_line_is_found() -> None:
    with pytest.raises(ManifestError, match="'cpu' is given twice, on lines 2 and 2"):
        parse_manifest("family: web\nsize: {cpu: 256, cpu: 512}\n", "td.yaml")


def test_equal_keys_in_different_mappings_are_fine() -> None:
    doc = parse_manifest("a:\n  name: x\nb:\n  name: y\n", "x.yaml")
    assert doc == {"a": {"name": "x"}, "b": {"name": "y"}}


def test_json_key_given_twice_names_the_key_and_both_lines() -> None:
    text = '{\n  "family": "web",\n  "cpu": "256",\n  "cpu": "512"\n}\n'
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "td.json")
    assert info.value.line == 4
    assert "'cpu' is given twice, on lines 3 and 4" in str(info.value)
