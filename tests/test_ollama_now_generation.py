"""Ollama as it is now (issue 23, part B), each through MCP over a real socket against the fake,
checked in what reaches Ollama: tool round trips, think levels, thinking in progress, batch and
compare with think and images, checked formats, current Modelfile lines and quantize types,
deprecated options, images by path and by URI."""

import base64
import hashlib

import pytest

from conftest import error_text, structured

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24
USER = {"role": "user", "content": "What is the weather in Paris?"}


def chat_args(**extra):
    return {"model": "qwen3:0.6b", "messages": [USER], **extra}


# --- chat messages: the tool round trip -----------------------------------------------------------


def test_a_tool_round_trip_with_tool_call_id_reaches_ollama_intact(client, fake):
    call = {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    messages = [
        USER,
        {"role": "assistant", "content": "", "thinking": "I need the weather.", "tool_calls": [call]},
        {"role": "tool", "content": "11 degrees", "tool_name": "get_weather", "tool_call_id": "call_1"},
    ]
    result = client.call("ollama_chat", {"model": "qwen3:0.6b", "messages": messages})[0]
    assert not result.get("isError"), error_text(result)
    assert fake.bodies("/api/chat")[-1]["messages"] == messages


def test_current_ollamas_tool_items_and_draft_num_predict_reach_it(client, fake):
    # v0.32's api.Tool has `items` and its Runner options `draft_num_predict` (with DRAFT models).
    tools = [{"type": "function", "items": {"type": "string"}, "function": {"name": "f", "parameters": {}}}]
    args = chat_args(tools=tools, options={"draft_num_predict": 4})
    result = client.call("ollama_chat", args)[0]
    assert not result.get("isError"), error_text(result)
    sent = fake.bodies("/api/chat")[-1]
    assert sent["tools"] == tools and sent["options"]["draft_num_predict"] == 4
    modelfile = "FROM gemma3:270m\nPARAMETER draft_num_predict 6\n"
    assert client.call("ollama_create_model", {"model": "drafted", "modelfile": modelfile})[0]["isError"] is False
    assert fake.bodies("/api/create")[-1]["parameters"] == {"draft_num_predict": 6}
    bad = client.call("ollama_chat", chat_args(options={"draft_num_predict": -1}))[0]
    assert bad["isError"] and "draft_num_predict" in error_text(bad)


def test_a_message_field_ollama_does_not_know_is_still_refused(client):
    bad = {"role": "tool", "content": "x", "tool_call": "call_1"}
    result = client.call("ollama_chat", {"model": "qwen3:0.6b", "messages": [bad]})[0]
    assert result["isError"] and "tool_call" in error_text(result)


# --- think levels and thinking in progress ----------------------------------------------------------


@pytest.mark.parametrize("level", [True, False, "low", "medium", "high", "max"])
def test_every_think_level_of_ollama_is_sent(client, fake, level):
    result = client.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "x", "think": level})[0]
    assert not result.get("isError"), error_text(result)
    assert fake.bodies("/api/generate")[-1]["think"] == level


def test_an_unknown_think_level_is_refused_naming_the_field(client, fake):
    result = client.call("ollama_generate", {"model": "qwen3:0.6b", "prompt": "x", "think": "extreme"})[0]
    assert result["isError"] and "think" in error_text(result)
    assert fake.bodies("/api/generate") == []


def test_fake_refuses_a_think_value_as_ollama_does(fake):
    import requests

    r = requests.post(f"{fake.url}/api/generate", json={"model": "qwen3:0.6b", "prompt": "x", "think": "x"}, timeout=5)
    assert r.status_code == 400 and "invalid think value" in r.json()["error"]


@pytest.mark.parametrize("tool", ["ollama_generate_stream", "ollama_chat_stream"])
def test_streamed_thinking_is_marked_apart_from_the_answer(client, tool):
    args = (
        {"model": "qwen3:0.6b", "prompt": "x", "think": "high"}
        if tool == "ollama_generate_stream"
        else chat_args(think="high")
    )
    result, notes = client.call(tool, args, progress=True)
    deltas = [n["params"]["message"] for n in notes]
    assert deltas[:4] == ["[thinking] Let", "[thinking]  me", "[thinking]  think", "[thinking] ."]
    assert deltas[4:] == ["The", " sky", " is", " blue", " because", " of", " Rayleigh", " scattering", "."]
    out = structured(result)
    assert out.get("thinking", out.get("message", {}).get("thinking")) == "Let me think."


# --- batch and compare: think, images, thinking apart ----------------------------------------------------


def test_batch_takes_think_and_images_and_returns_thinking(client, fake):
    fake.models["qwen3:0.6b"].show["capabilities"].append("vision")
    image = base64.b64encode(PNG).decode()
    out = structured(
        client.call(
            "ollama_batch_generate",
            {"model": "qwen3:0.6b", "prompts": ["a", "b"], "think": "low", "images": [image]},
        )[0]
    )
    for body in fake.bodies("/api/generate"):
        assert body["think"] == "low" and body["images"] == [image]
    assert [r["thinking"] for r in out["results"]] == ["Let me think."] * 2
    assert all(r["response"].startswith("The sky") for r in out["results"])


def test_compare_takes_think_and_images_and_returns_thinking(client, fake):
    fake.models["qwen3:0.6b"].show["capabilities"].append("vision")
    image = base64.b64encode(PNG).decode()
    out = structured(
        client.call(
            "ollama_compare_models",
            {"models": ["qwen3:0.6b"], "prompt": "what is this?", "think": True, "images": [image]},
        )[0]
    )
    body = fake.bodies("/api/generate")[-1]
    assert body["think"] is True and body["images"] == [image]
    assert out["results"][0]["thinking"] == "Let me think."


# --- format: checked -------------------------------------------------------------------------------


SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def test_an_answer_matching_the_format_schema_is_format_valid(client, fake):
    fake.tokens = ['{"a":', " 1}"]
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": SCHEMA})[0])
    assert out["format_valid"] is True and "format_errors" not in out
    assert fake.bodies("/api/generate")[-1]["format"] == SCHEMA


def test_a_cut_off_answer_is_not_format_valid(client, fake):
    fake.tokens = ['{"a":']
    out = structured(client.call("ollama_chat", chat_args(model="gemma3:270m", format=SCHEMA))[0])
    assert out["format_valid"] is False and out["format_errors"][0].startswith("not JSON")


def test_an_answer_off_the_schema_lists_its_errors_bounded(client, fake):
    fake.tokens = ['{"a": "one"}']
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": SCHEMA})[0])
    assert out["format_valid"] is False
    assert out["format_errors"] == ["$.a: 'one' is not of type 'integer'"]
    many = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcdefgh"}}
    fake.tokens = ['{"a":"x","b":"x","c":"x","d":"x","e":"x","f":"x","g":"x","h":"x"}']
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": many})[0])
    assert out["format_valid"] is False and len(out["format_errors"]) == 5


def test_format_json_is_checked_as_json(client, fake):
    fake.tokens = ["[1, 2]"]
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": "json"})[0])
    assert out["format_valid"] is True
    fake.tokens = ["not json"]
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": "json"})[0])
    assert out["format_valid"] is False


def test_no_format_no_format_valid(client):
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x"})[0])
    assert "format_valid" not in out


def test_batch_results_carry_format_valid(client, fake):
    fake.tokens = ['{"a": 1}']
    out = structured(
        client.call("ollama_batch_generate", {"model": "gemma3:270m", "prompts": ["x"], "format": SCHEMA})[0]
    )
    assert out["results"][0]["format_valid"] is True


# --- Modelfiles of current Ollama, quantize types, deprecated options -------------------------------------


def create(client, modelfile, **extra):
    return client.call("ollama_create_model", {"model": "mine", "modelfile": modelfile, **extra})[0]


def test_renderer_parser_and_requires_lines_become_create_fields(client, fake):
    out = structured(create(client, "FROM qwen3:0.6b\nRENDERER qwen3-coder\nPARSER qwen3-coder\nREQUIRES v0.12.6"))
    body = fake.bodies("/api/create")[-1]
    assert (body["renderer"], body["parser"], body["requires"]) == ("qwen3-coder", "qwen3-coder", "0.12.6")
    assert out["request"]["requires"] == "0.12.6"


def test_requires_must_be_a_version(client, fake):
    result = create(client, "FROM qwen3:0.6b\nREQUIRES soon")
    assert result["isError"] and "line 2" in error_text(result) and "REQUIRES" in error_text(result)
    assert fake.bodies("/api/create") == []


def test_a_draft_line_uploads_its_file_as_draft_files(start_server, fake, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "draft.gguf").write_bytes(b"GGUF draft")
    digest = "sha256:" + hashlib.sha256(b"GGUF draft").hexdigest()
    server = start_server(model_dirs=(str(models),))
    c = server.client()
    c.initialize()
    result = create(c, f"FROM qwen3:0.6b\nDRAFT {models / 'draft.gguf'}")
    assert not result.get("isError"), error_text(result)
    assert fake.bodies("/api/create")[-1]["draft_files"] == {"draft.gguf": digest}
    assert fake.blobs[digest] == b"GGUF draft"
    outside = create(c, f"FROM qwen3:0.6b\nDRAFT {tmp_path / 'elsewhere.gguf'}")
    assert outside["isError"] and "outside MCP_MODEL_DIRS" in error_text(outside)


def test_a_draft_must_be_a_file(client):
    result = create(client, "FROM qwen3:0.6b\nDRAFT qwen3:0.6b")
    assert result["isError"] and "DRAFT takes a local" in error_text(result)


@pytest.mark.parametrize(("given", "sent"), [("Q8_0", "Q8_0"), ("q4_K_M", "Q4_K_M"), ("F32", "F32")])
def test_quantize_takes_what_ollama_quantizes_to(client, fake, given, sent):
    fake.models["gemma3:270m"].tag["details"]["quantization_level"] = "F16"
    result = create(client, "FROM gemma3:270m", quantize=given)
    assert not result.get("isError"), error_text(result)
    assert fake.bodies("/api/create")[-1]["quantize"] == sent


def test_quantize_refuses_a_type_ollama_refuses(client, fake):
    result = create(client, "FROM gemma3:270m", quantize="q5_K_M")
    assert result["isError"] and "quantize" in error_text(result)
    assert fake.bodies("/api/create") == []


DEPRECATED = {"mirostat": 2, "mirostat_tau": 5.0, "mirostat_eta": 0.1, "penalize_newline": True, "numa": False}


@pytest.mark.parametrize("tool", ["ollama_generate", "ollama_batch_generate"])
def test_deprecated_options_are_reported_not_forwarded(client, fake, tool):
    args = {"model": "gemma3:270m", "options": {"temperature": 0, **DEPRECATED}}
    args.update({"prompt": "x"} if tool == "ollama_generate" else {"prompts": ["x"]})
    out = structured(client.call(tool, args)[0])
    assert sorted(out["ignored_options"]) == sorted(DEPRECATED)
    assert "Mirostat" in out["ignored_options"]["mirostat"]
    assert fake.bodies("/api/generate")[-1]["options"] == {"temperature": 0}


# --- images by path and by URI --------------------------------------------------------------------------


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "cat.png").write_bytes(PNG)
    (folder / "fake.png").write_bytes(b"#!/bin/sh\necho not an image\n")
    (tmp_path / "secret.png").write_bytes(PNG)
    (folder / "link.png").symlink_to(tmp_path / "secret.png")
    return folder


@pytest.fixture
def vision_client(start_server, fake, images):
    fake.models["qwen3:0.6b"].show["capabilities"].append("vision")
    c = start_server(image_dirs=(str(images),), max_body_bytes=4096).client()
    c.initialize()
    return c


def generate_image(c, image, tool="ollama_generate"):
    return c.call(tool, {"model": "qwen3:0.6b", "prompt": "what is this?", "images": [image]})[0]


@pytest.mark.parametrize("tool", ["ollama_generate", "ollama_generate_stream"])
def test_an_image_by_path_inside_the_allowed_dirs_reaches_ollama_as_base64(vision_client, fake, images, tool):
    result = generate_image(vision_client, str(images / "cat.png"), tool)
    assert not result.get("isError"), error_text(result)
    assert fake.bodies("/api/generate")[-1]["images"] == [base64.b64encode(PNG).decode()]


def test_chat_batch_and_compare_read_images_by_path(vision_client, fake, images):
    encoded = base64.b64encode(PNG).decode()
    path = str(images / "cat.png")
    message = {"role": "user", "content": "what is this?", "images": [path]}
    r = vision_client.call("ollama_chat", {"model": "qwen3:0.6b", "messages": [message]})[0]
    assert not r.get("isError"), error_text(r)
    assert fake.bodies("/api/chat")[-1]["messages"][0]["images"] == [encoded]
    vision_client.call("ollama_batch_generate", {"model": "qwen3:0.6b", "prompts": ["a", "b"], "images": [path]})
    vision_client.call("ollama_compare_models", {"models": ["qwen3:0.6b"], "prompt": "a", "images": [path]})
    assert [b["images"] for b in fake.bodies("/api/generate")] == [[encoded]] * 3


def test_every_path_outside_the_allowed_dirs_gets_the_same_refusal(vision_client, fake, images, tmp_path):
    texts = []
    for path in (tmp_path / "secret.png", tmp_path / "missing.png", images / "link.png", images / ".." / "secret.png"):
        result = generate_image(vision_client, str(path))
        assert result["isError"]
        texts.append(error_text(result).replace(repr(str(path)), "PATH"))
    assert len(set(texts)) == 1 and "images[0]" in texts[0] and "outside MCP_IMAGE_DIRS" in texts[0]
    assert fake.bodies("/api/generate") == []


def test_image_paths_are_refused_when_no_dir_is_allowed(client, fake, tmp_path):
    (tmp_path / "cat.png").write_bytes(PNG)
    result = generate_image(client, str(tmp_path / "cat.png"))
    assert result["isError"] and "outside MCP_IMAGE_DIRS" in error_text(result)


def test_an_image_file_must_be_an_image_and_not_too_large(vision_client, fake, images):
    result = generate_image(vision_client, str(images / "fake.png"))
    assert result["isError"] and "not a PNG, JPEG, GIF or WEBP" in error_text(result)
    (images / "big.png").write_bytes(PNG + b"\x00" * 5000)
    result = generate_image(vision_client, str(images / "big.png"))
    assert result["isError"] and "MCP_MAX_BODY_BYTES" in error_text(result)
    (images / "pic.webp").write_bytes(b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8)
    assert not generate_image(vision_client, str(images / "pic.webp")).get("isError")
    assert fake.bodies("/api/generate")[-1]["images"][0].startswith("UklGR")


def test_a_message_image_refused_names_its_field(vision_client):
    message = {"role": "user", "content": "x", "images": [base64.b64encode(PNG).decode(), "/etc/x.png"]}
    result = vision_client.call("ollama_chat", {"model": "qwen3:0.6b", "messages": [message]})[0]
    assert result["isError"] and "messages[0].images[1]" in error_text(result)


def test_a_uri_that_names_no_image_resource_is_refused_clearly(vision_client, fake):
    for uri in ("ollama://models/qwen3:0.6b", "https://example.org/cat.png"):
        result = generate_image(vision_client, uri)
        assert result["isError"] and "a URI this server cannot read" in error_text(result)
        assert "ollama://images/" in error_text(result)
    assert fake.bodies("/api/generate") == []


def test_images_in_the_allowed_dirs_are_resources_a_tool_takes_by_uri(start_server, fake, images):
    # resources/list names each image (not the link that leads outside), the official client reads
    # one as a blob, and generate and chat take its URI, or a file:// URI, as they take a path.
    import urllib.parse

    import anyio
    from mcp import Client
    from mcp.types import ResourceTemplateReference

    fake.models["qwen3:0.6b"].show["capabilities"].append("vision")
    server = start_server(image_dirs=(str(images),), max_body_bytes=4096)
    cat = f"ollama://images/{urllib.parse.quote(str(images.resolve() / 'cat.png'), safe='')}"

    async def main():
        async with Client(server.url, mode="2026-07-28") as client:
            listed = {str(r.uri): r for r in (await client.list_resources()).resources}
            templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
            read = await client.read_resource(cat)
            ref = ResourceTemplateReference(type="ref/resource", uri="ollama://images/{path}")
            completed = await client.complete(ref, {"name": "path", "value": str(images.resolve() / "c")})
            by_uri = await client.call_tool("ollama_generate", {"model": "qwen3:0.6b", "prompt": "?", "images": [cat]})
            message = {"role": "user", "content": "?", "images": [f"file://{images / 'cat.png'}"]}
            by_file = await client.call_tool("ollama_chat", {"model": "qwen3:0.6b", "messages": [message]})
            return listed, templates, read, completed, by_uri, by_file

    listed, templates, read, completed, by_uri, by_file = anyio.run(main)
    assert completed.completion.values == [str(images.resolve() / "cat.png")]
    assert "ollama://images/{path}" in templates
    assert cat in listed and listed[cat].mime_type == "image/png"
    assert not any("link.png" in uri for uri in listed), "the link to a file outside is not offered"
    (content,) = read.contents
    assert content.mime_type == "image/png" and base64.b64decode(content.blob) == PNG
    assert by_uri.is_error is False and by_file.is_error is False
    sent = base64.b64encode(PNG).decode()
    assert fake.bodies("/api/generate")[-1]["images"] == [sent]
    assert fake.bodies("/api/chat")[-1]["messages"][0]["images"] == [sent]
    c = server.client()
    c.initialize()
    secret = f"ollama://images/{urllib.parse.quote(str(images / 'link.png'), safe='')}"
    answers = []
    for uri in (secret, cat.replace("cat.png", "missing.png"), cat.replace("cat.png", "fake.png")):
        response, _ = c.request("resources/read", {"uri": uri})
        answers.append((response["error"]["code"], response["error"]["message"].replace(uri, "URI")))
    assert len(set(answers)) == 1 and "Resource not found" in answers[0][1], answers  # one answer for all
    result = generate_image(c, secret)
    assert result["isError"] and "outside MCP_IMAGE_DIRS" in error_text(result)


def test_an_image_uri_is_held_to_the_same_rules_as_a_path(vision_client, fake, images, tmp_path):
    # `..` parts (plain or percent-encoded), NUL bytes, ~user and file:// on another host never read a
    # file; every outside case gets the same words; a name too long is a clear error, not a crash.
    inside = str(images.resolve())
    outside = [
        f"{inside}/../secret.png",
        f"{inside}/nowhere/../cat.png",  # resolve() reads `..` after a missing part as text: no oracle
        f"ollama://images/{inside}/%2e%2e/secret.png",
        f"ollama://images/{inside}/cat.png%00.png",
        "ollama://images/~root/x.png",
        f"file://{inside}/../secret.png",
    ]
    texts = []
    for raw in outside:
        result = generate_image(vision_client, raw)
        assert result["isError"], raw
        texts.append(error_text(result).split(" refused: ")[-1])
    assert len(set(texts)) == 1 and "outside MCP_IMAGE_DIRS" in texts[0], texts
    far = generate_image(vision_client, f"file://example.org{inside}/cat.png")
    assert far["isError"] and "a URI this server cannot read" in error_text(far)
    assert generate_image(vision_client, f"file://localhost{inside}/cat.png").get("isError") is not True
    long = generate_image(vision_client, f"{inside}/{'a' * 300}.png")
    assert long["isError"] and "cannot read" in error_text(long), error_text(long)
    assert [b["images"] for b in fake.bodies("/api/generate")] == [[base64.b64encode(PNG).decode()]]


def test_resources_list_offers_only_images_a_read_would_serve(start_server, images):
    (images / "big.png").write_bytes(PNG + b"\x00" * 5000)  # over MCP_MAX_BODY_BYTES below
    (images / "gone.png").symlink_to(images / "nowhere.png")
    (images / "sub").mkdir()
    (images / "sub" / "dog.gif").write_bytes(b"GIF89a" + b"\x00" * 20)
    server = start_server(image_dirs=(str(images),), max_body_bytes=4096)
    c = server.client()
    c.initialize()
    listed = {r["name"]: r["mimeType"] for r in c.request("resources/list")[0]["result"]["resources"]
              if r["uri"].startswith("ollama://images/")}  # fmt: skip
    assert listed == {"cat.png": "image/png", "dog.gif": "image/gif"}, listed


def test_without_image_dirs_there_is_no_image_template(client):
    response, _ = client.request("resources/templates/list")
    assert "ollama://images/{path}" not in [t["uriTemplate"] for t in response["result"]["resourceTemplates"]]


# --- against a real Ollama v0.24.0 (OLLAMA_TEST_URL): what it supports of these -----------------------

REAL_GEN = "gemma3:270m"  # no thinking: Ollama parses the level, then says the model cannot think
REAL_SMALL = {"num_predict": 4, "temperature": 0, "seed": 1}


@pytest.fixture
def real_client(start_server, real_url):
    c = start_server(ollama_url=real_url, ollama_timeout=120).client()
    c.initialize()
    return c


@pytest.mark.real_ollama
@pytest.mark.parametrize("level", ["low", "medium", "high", "max"])
def test_real_ollama_takes_every_think_level(real_client, level):
    result = real_client.call("ollama_generate", {"model": REAL_GEN, "prompt": "Hi", "think": level})[0]
    # an unknown level would be "invalid think value"; a known one reaches the model check
    assert result["isError"] and "does not support thinking" in error_text(result)
    assert "invalid think value" not in error_text(result)
    out = structured(
        real_client.call("ollama_generate", {"model": REAL_GEN, "prompt": "Hi", "think": False, "options": REAL_SMALL})[
            0
        ]
    )
    assert out["response"] and "thinking" not in out


@pytest.mark.real_ollama
def test_real_ollama_takes_a_tool_round_trip_with_tool_call_id(real_client):
    call = {"id": "call_1", "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}
    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": "11 degrees and rain", "tool_name": "get_weather", "tool_call_id": "call_1"},
    ]
    result = real_client.call("ollama_chat", {"model": REAL_GEN, "messages": messages, "options": REAL_SMALL})[0]
    assert not result.get("isError"), error_text(result)
    assert structured(result)["message"]["role"] == "assistant"


@pytest.mark.real_ollama
def test_real_ollama_refuses_a_prompt_over_the_window_with_truncate_false(real_client):
    words = " ".join(f"word{i}" for i in range(400))
    args = {"model": REAL_GEN, "prompt": words, "truncate": False, "options": {**REAL_SMALL, "num_ctx": 256}}
    result = real_client.call("ollama_generate", args)[0]
    assert result["isError"] and "num_ctx" in error_text(result)


def test_the_format_schemas_regexes_are_not_run(client, fake):
    # a catastrophic regex of the caller's would hold the GIL for ever: it is left to Ollama's grammar
    evil = {"type": "object", "properties": {"pattern": {"type": "string", "pattern": "^(a+)+$"}}}
    fake.tokens = ['{"pattern": "' + "a" * 40 + '!"}']
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": evil})[0])
    assert out["format_valid"] is True
    fake.tokens = ['{"pattern": 1}']  # a property named "pattern" is still checked
    out = structured(client.call("ollama_generate", {"model": "gemma3:270m", "prompt": "x", "format": evil})[0])
    assert out["format_valid"] is False


def test_a_chat_answered_with_a_tool_call_has_no_format_check(client, fake):
    fake.tool_calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    fake.tokens = []
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    out = structured(client.call("ollama_chat", chat_args(tools=tools, format=SCHEMA))[0])
    assert out["message"]["tool_calls"] and "format_valid" not in out


def test_an_image_path_that_is_no_file_is_refused_without_blocking(vision_client, images):
    import os

    os.mkfifo(images / "pipe.png")
    (images / "dir.png").mkdir()
    for name in ("pipe.png", "dir.png", "missing.png"):
        result = generate_image(vision_client, str(images / name))
        assert result["isError"] and "is not a .png/.jpg/.gif/.webp file" in error_text(result)
