"""The Modelfile parser, as the ollama CLI reads Modelfiles."""

import json
from pathlib import Path

import pytest

from ollama_mcp import ModelfileError, parse_modelfile


def test_keywords_are_case_insensitive_and_comments_skipped():
    parsed = parse_modelfile("# comment\nfrom llama3.2\nSystem be brief\nparameter TOP_K 20\n")
    assert parsed["from"] == ("llama3.2", 2)
    assert parsed["system"] == "be brief"
    assert parsed["parameters"] == {"top_k": 20}


def test_triple_quoted_values_span_lines():
    parsed = parse_modelfile('FROM m\nTEMPLATE """{{ .System }}\n{{ .Prompt }}"""\nSYSTEM """one line"""\n')
    assert parsed["template"] == "{{ .System }}\n{{ .Prompt }}"
    assert parsed["system"] == "one line"


def test_quoted_values_and_repeatable_stop():
    parsed = parse_modelfile(
        'FROM m\nPARAMETER stop "<|end|>"\nPARAMETER stop "User:"\nPARAMETER use_mmap true\nPARAMETER top_p 0.9\n'
    )
    assert parsed["parameters"] == {"stop": ["<|end|>", "User:"], "use_mmap": True, "top_p": 0.9}


def test_messages_license_and_adapters():
    parsed = parse_modelfile(
        'FROM m\nMESSAGE user """Hi\nthere"""\nMESSAGE assistant Hello\nLICENSE """MIT\ntext"""\nADAPTER ./lora.gguf\n'
    )
    assert parsed["messages"] == [{"role": "user", "content": "Hi\nthere"}, {"role": "assistant", "content": "Hello"}]
    assert parsed["license"] == ["MIT\ntext"]
    assert parsed["adapters"] == [("./lora.gguf", 7)]


@pytest.mark.parametrize(
    "text, words",
    [
        ("FROM m\nFOO bar\n", "line 2: unknown instruction 'FOO'"),
        ("FROM m\nPARAMETER temprature 1\n", "line 2: unknown PARAMETER 'temprature'"),
        ("FROM m\nPARAMETER seed x\n", "line 2: PARAMETER seed needs a integer"),
        ("FROM m\nPARAMETER use_mmap maybe\n", "line 2: PARAMETER use_mmap needs a boolean"),
        ("FROM m\nMESSAGE robot hi\n", "line 2: MESSAGE role must be one of"),
        ('FROM m\nSYSTEM """never closed\n', 'a """ block is never closed'),
        ("FROM m\nSYSTEM\n", "line 2: SYSTEM needs a value"),
        ("FROM a\nFROM b\n", "line 2: FROM given twice"),
    ],
)
def test_errors_name_the_line(text, words):
    with pytest.raises(ModelfileError) as info:
        parse_modelfile(text)
    assert words in str(info.value)


def test_parses_what_ollama_show_prints():
    shown = json.loads((Path(__file__).parent / "ollama_captures" / "raw" / "15-show.body").read_text())
    parsed = parse_modelfile(shown["modelfile"])
    assert parsed["parameters"] == {
        "stop": ["<end_of_turn>"],
        "temperature": 1.0,
        "top_k": 64,
        "top_p": 0.95,
        "num_predict": 128,
    }
    assert parsed["template"].startswith("{{- range $i, $_ := .Messages }}")
    assert parsed["from"][0].startswith("/usr/share/ollama/.ollama/models/blobs/sha256-")
