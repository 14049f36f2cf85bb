"""Model management: list, show, pull, delete, copy, create and update (Modelfiles), blobs."""

import hashlib
import json

import jsonschema
import pytest

from conftest import call_ok, error_text, structured

MODELFILE = '''# a pirate
FROM gemma3:270m
parameter temperature 0.3
PARAMETER stop "<end>"
PARAMETER stop ###
PARAMETER num_ctx 4096
SYSTEM """You are a pirate.
Answer in one line."""
TEMPLATE {{ .Prompt }}
LICENSE MIT
MESSAGE user Ahoy?
MESSAGE assistant Arr!
'''


LICENSE = "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\n" + "Terms and conditions. " * 2000


@pytest.fixture
def licensed(fake):
    model = fake.models["gemma3:270m"]
    model.show = {**model.show, "license": LICENSE, "modelfile": model.show["modelfile"] + f'LICENSE """{LICENSE}"""\n'}
    return fake


def test_results_match_their_output_schema(client, server):
    calls = {
        "ollama_check_health": {},
        "ollama_list_models": {},
        "ollama_show_model": {"model": "gemma3:270m"},
        "ollama_pull_model": {"model": "tinyllama"},
        "ollama_generate": {"model": "gemma3:270m", "prompt": "hi"},
        "ollama_generate_stream": {"model": "gemma3:270m", "prompt": "hi"},
        "ollama_chat": {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]},
        "ollama_chat_stream": {"model": "gemma3:270m", "messages": [{"role": "user", "content": "hi"}]},
    }
    for name, args in calls.items():
        result, _ = client.call(name, args)
        jsonschema.validate(structured(result), server.mcp.registry.get(name).output_schema)


def test_list_models_reads_details(client):
    out = structured(client.call("ollama_list_models")[0])
    assert out["count"] == 4
    gemma = next(m for m in out["models"] if m["name"] == "gemma3:270m")
    assert gemma["family"] == "gemma3"
    assert gemma["parameter_size"] == "268.10M"
    assert gemma["quantization_level"] == "Q4_K_M"
    assert gemma["size"] == 253113900
    assert gemma["size_human"] == "253.1 MB"


def test_show_derived_model_has_system(client):
    out = structured(client.call("ollama_show_model", {"model": "gemma3-270m-assistant"})[0])
    assert out["system"] == "You are a terse assistant."
    assert out["details"]["parent_model"] == "gemma3:270m"


def test_show_unknown_model_says_what_to_do(client):
    text = error_text(client.call("ollama_show_model", {"model": "does-not-exist"})[0])
    assert "model 'does-not-exist:latest' not found" in text
    assert "ollama_list_models" in text and "ollama_pull_model" in text


def test_model_names_that_look_like_paths_or_flags_are_rejected(client, fake):
    for bad in ["../etc/passwd", "-rf", "a b", ""]:
        text = error_text(client.call("ollama_show_model", {"model": bad})[0])
        assert "$.model" in text
    assert "/api/show" not in fake.paths()


def test_pull_sends_byte_progress_with_status(client, fake):
    fake.chunk_delay = 0.01
    result, notes = client.call("ollama_pull_model", {"model": "tinyllama"}, progress=True)
    out = structured(result)
    assert out["status"] == "success"
    assert out["total_bytes"] == 6000
    params = [n["params"] for n in notes]
    assert all(n["method"] == "notifications/progress" for n in notes)
    assert all(p["progressToken"] == "tok" for p in params)
    values = [p["progress"] for p in params]
    assert values == sorted(set(values)), "progress must strictly increase"
    assert params[0]["message"] == "pulling manifest"
    assert any(p.get("total") == 6000 for p in params)
    assert params[-1]["message"] == "success"
    assert fake.bodies("/api/pull")[0]["stream"] is True


def test_pull_without_progress_token_sends_no_notifications(client):
    result, notes = client.call("ollama_pull_model", {"model": "tinyllama"})
    assert structured(result)["status"] == "success" and notes == []


def test_pull_offline_passes_ollamas_error_on(client):
    text = error_text(client.call("ollama_pull_model", {"model": "all-minilm"})[0])
    assert "pull model manifest" in text
    assert "registry" in text


def test_delete_model(client, server, fake):
    out, _ = call_ok(client, server, "ollama_delete_model", {"model": "gemma3-270m-assistant"})
    assert out == {"model": "gemma3-270m-assistant", "deleted": True, "message": "deleted gemma3-270m-assistant"}
    assert "gemma3-270m-assistant:latest" not in fake.models
    assert fake.bodies("/api/delete") == [{"model": "gemma3-270m-assistant"}]


def test_delete_unknown_model(client):
    text = error_text(client.call("ollama_delete_model", {"model": "gone"})[0])
    assert "model 'gone' not found" in text and "ollama_list_models" in text


def test_delete_is_annotated_destructive(server):
    annotations = server.mcp.registry.get("ollama_delete_model").annotations
    assert annotations["destructiveHint"] is True and annotations["readOnlyHint"] is False


def test_copy_model_with_empty_body_answer(client, server, fake):
    out, _ = call_ok(client, server, "ollama_copy_model", {"source": "gemma3:270m", "destination": "my-gemma"})
    assert out["copied"] is True and "my-gemma:latest" in fake.models


def test_copy_unknown_source(client):
    text = error_text(client.call("ollama_copy_model", {"source": "nope", "destination": "x"})[0])
    assert 'model "nope" not found' in text and "ollama_list_models" in text


def test_get_modelfile(client, server):
    out, _ = call_ok(client, server, "ollama_get_modelfile", {"model": "gemma3:270m"})
    assert out["modelfile"].startswith('# Modelfile generated by "ollama show"')
    assert "PARAMETER stop <end_of_turn>" in out["modelfile"]


def test_check_blobs(client, server, fake):
    digest = "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert call_ok(client, server, "ollama_check_blobs", {"digest": digest})[0]["exists"] is False
    fake.blobs[digest] = b"abc"
    assert call_ok(client, server, "ollama_check_blobs", {"digest": digest})[0]["exists"] is True


def test_create_model_sends_the_json_form_and_streams_status(client, server, fake):
    out, notes = call_ok(
        client, server, "ollama_create_model", {"model": "pirate", "modelfile": MODELFILE}, progress=True
    )
    sent = fake.bodies("/api/create")[0]
    assert sent == {
        "model": "pirate",
        "from": "gemma3:270m",
        "template": "{{ .Prompt }}",
        "system": "You are a pirate.\nAnswer in one line.",
        "parameters": {"temperature": 0.3, "stop": ["<end>", "###"], "num_ctx": 4096},
        "messages": [{"role": "user", "content": "Ahoy?"}, {"role": "assistant", "content": "Arr!"}],
        "license": ["MIT"],
        "stream": True,
    }
    assert "modelfile" not in sent
    assert out["status"] == "success"
    assert [n["params"]["message"] for n in notes][-1] == "success"
    assert fake.models["pirate:latest"].show["system"] == "You are a pirate.\nAnswer in one line."


def test_create_model_syntax_error_names_the_line(client, fake):
    text = error_text(
        client.call("ollama_create_model", {"model": "x", "modelfile": "FROM gemma3:270m\nPARAMETR temperature 1\n"})[0]
    )
    assert "line 2" in text and "PARAMETR" in text
    assert "/api/create" not in fake.paths()


def test_create_model_typed_parameter_error(client):
    text = error_text(
        client.call("ollama_create_model", {"model": "x", "modelfile": "FROM gemma3:270m\nPARAMETER num_ctx big\n"})[0]
    )
    assert "line 2" in text and "num_ctx" in text and "integer" in text


def test_create_model_needs_from(client):
    assert "FROM is required" in error_text(
        client.call("ollama_create_model", {"model": "x", "modelfile": "SYSTEM hi\n"})[0]
    )


def test_create_with_quantize_on_a_quantized_model(client):
    text = error_text(
        client.call("ollama_create_model", {"model": "x", "modelfile": "FROM gemma3:270m", "quantize": "q4_K_M"})[0]
    )
    assert "quantization is only supported for F16" in text


def test_create_from_a_local_file_is_refused_over_http_by_default(client, tmp_path, fake):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    text = error_text(client.call("ollama_create_model", {"model": "x", "modelfile": f"FROM {gguf}"})[0])
    assert "refused" in text and "MCP_MODEL_DIRS" in text
    assert not [p for p in fake.paths() if p.startswith("/api/blobs")]


def test_create_from_a_local_file_under_an_allowed_dir_uploads_it(start_server, tmp_path, fake):
    models = tmp_path / "models"
    models.mkdir()
    gguf = models / "tiny.gguf"
    gguf.write_bytes(b"GGUF fake weights")
    digest = "sha256:" + hashlib.sha256(b"GGUF fake weights").hexdigest()
    server = start_server(model_dirs=(str(models),))
    c = server.client()
    c.initialize()
    out = structured(
        c.call("ollama_create_model", {"model": "tiny", "modelfile": f"FROM {gguf}\nPARAMETER temperature 0"})[0]
    )
    assert out["request"]["files"] == {"tiny.gguf": digest}
    assert fake.blobs[digest] == b"GGUF fake weights"
    assert ("HEAD", f"/api/blobs/{digest}") in [(m, p) for m, p, _ in fake.requests]
    # a second create finds the blob and does not upload it again
    c.call("ollama_create_model", {"model": "tiny2", "modelfile": f"FROM {gguf}"})
    assert [m for m, p, _ in fake.requests if p == f"/api/blobs/{digest}"] == ["HEAD", "POST", "HEAD"]


def test_create_refuses_a_symlink_out_of_the_allowed_dir(start_server, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    secret = tmp_path / "secret.gguf"
    secret.write_bytes(b"secret")
    (models / "link.gguf").symlink_to(secret)
    server = start_server(model_dirs=(str(models),))
    c = server.client()
    c.initialize()
    text = error_text(c.call("ollama_create_model", {"model": "x", "modelfile": f"FROM {models / 'link.gguf'}"})[0])
    assert "outside MCP_MODEL_DIRS" in text


def test_update_merges_into_the_current_definition(client, server, fake):
    out, _ = call_ok(
        client,
        server,
        "ollama_update_model",
        {"model": "gemma3-270m-assistant", "modelfile": "PARAMETER temperature 0.2\n"},
    )
    sent = fake.bodies("/api/create")[0]
    assert sent["from"] == "gemma3-270m-assistant"
    assert sent["system"] == "You are a terse assistant."
    assert sent["parameters"] == {
        "num_ctx": 2048,
        "num_predict": 128,
        "stop": ["<end_of_turn>"],
        "temperature": 0.2,
        "top_k": 64,
        "top_p": 0.95,
    }
    assert out["changed"] == {
        "parameters": {
            "before": {
                "num_ctx": 2048,
                "num_predict": 128,
                "stop": ["<end_of_turn>"],
                "temperature": 1,
                "top_k": 64,
                "top_p": 0.95,
            },
            "after": sent["parameters"],
        }
    }


def test_update_system_replaces_only_the_system(client, server, fake):
    out, _ = call_ok(
        client,
        server,
        "ollama_update_model",
        {"model": "gemma3-270m-assistant", "modelfile": "SYSTEM You are verbose.\n"},
    )
    assert out["changed"] == {"system": {"before": "You are a terse assistant.", "after": "You are verbose."}}
    assert fake.bodies("/api/create")[0]["parameters"]["num_ctx"] == 2048


def test_update_overwrite_replaces_the_whole_definition(client, server, fake):
    out, _ = call_ok(
        client,
        server,
        "ollama_update_model",
        {"model": "gemma3-270m-assistant", "modelfile": "PARAMETER temperature 0.5\n", "overwrite": True},
    )
    sent = fake.bodies("/api/create")[0]
    assert sent["parameters"] == {"temperature": 0.5}
    assert sent["system"] == ""
    assert out["changed"]["system"] == {"before": "You are a terse assistant.", "after": ""}


def test_update_unknown_model(client, fake):
    text = error_text(client.call("ollama_update_model", {"model": "nope", "modelfile": "SYSTEM x"})[0])
    assert "not found" in text and "/api/create" not in fake.paths()


def test_a_safetensors_folder_with_a_link_outside_is_refused(start_server, tmp_path, fake):
    models = tmp_path / "models"
    folder = models / "mymodel"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (tmp_path / "secret.json").write_text('{"key": "secret"}')
    (folder / "tokenizer.json").symlink_to(tmp_path / "secret.json")
    server = start_server(model_dirs=(str(models),))
    c = server.client()
    c.initialize()
    text = error_text(c.call("ollama_create_model", {"model": "x", "modelfile": f"FROM {folder}"})[0])
    assert "links outside" in text
    assert hashlib.sha256(b'{"key": "secret"}').hexdigest() not in json.dumps(fake.paths())


def test_a_safetensors_folder_is_uploaded_file_by_file(start_server, tmp_path, fake):
    models = tmp_path / "models"
    folder = models / "st"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    (folder / "notes.md").write_text("not a model file")
    server = start_server(model_dirs=(str(models),))
    c = server.client()
    c.initialize()
    out = structured(c.call("ollama_create_model", {"model": "st", "modelfile": f"FROM {folder}\n"})[0])
    assert sorted(out["request"]["files"]) == ["config.json", "model.safetensors"]
    assert fake.blobs["sha256:" + hashlib.sha256(b"weights").hexdigest()] == b"weights"


def test_a_namespaced_model_name_is_not_taken_for_a_path(client, fake):
    structured(client.call("ollama_create_model", {"model": "x", "modelfile": "FROM gemma3:270m"})[0])
    text = error_text(client.call("ollama_create_model", {"model": "y", "modelfile": "FROM library/nope"})[0])
    assert "not found" in text and "refused" not in text
    assert fake.bodies("/api/create")[-1]["from"] == "library/nope"


def test_a_modelfile_parameter_ollama_ignores_is_refused(client, fake):
    result, _ = client.call(
        "ollama_create_model", {"model": "x", "modelfile": "FROM gemma3:270m\nPARAMETER use_mlock true"}
    )
    assert result["isError"] and "line 2" in error_text(result) and "use_mlock" in error_text(result)
    assert "/api/create" not in fake.paths()


def test_show_and_modelfile_leave_the_license_out_unless_asked(client, licensed):
    shown = client.call("ollama_show_model", {"model": "gemma3:270m"})[0]
    assert len(shown["content"][0]["text"]) < 12_000
    out = structured(shown)
    assert (
        out["license"].startswith("LLAMA 3.2 COMMUNITY LICENSE AGREEMENT") and "include_license: true" in out["license"]
    )
    assert "Terms and conditions. " * 50 not in out["modelfile"] and "# LICENSE left out" in out["modelfile"]
    modelfile = structured(client.call("ollama_get_modelfile", {"model": "gemma3:270m"})[0])["modelfile"]
    assert "# LICENSE left out" in modelfile and "TEMPLATE" in modelfile
    full = structured(client.call("ollama_show_model", {"model": "gemma3:270m", "include_license": True})[0])
    assert full["license"] == LICENSE and LICENSE in full["modelfile"]
    assert (
        LICENSE
        in structured(client.call("ollama_get_modelfile", {"model": "gemma3:270m", "include_license": True})[0])[
            "modelfile"
        ]
    )
