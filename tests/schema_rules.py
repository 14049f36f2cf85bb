"""What each model provider and agent client refuses in a published tool schema: pure functions.

Every `*_problems(schema)` takes one published `inputSchema` (a dict) and returns a list of
messages, each naming the JSON path (`$.properties.model.pattern`) and the rule it breaks; an empty
list means the target accepts the schema. No test framework here: tests/test_schema_lint.py runs
these over every published tool, bench/ or a REPL can call them too.

    re2_problems             every pattern compiles under RE2 (Go, Rust and RE2-based validators)
    ecma_problems            every pattern compiles as an ECMAScript RegExp with the 'u' flag
    portable_problems        DESIGN.md's portable subset (no lookaround, no root combinators, ...)
    openai_problems          what OpenAI function calling (non-strict) refuses with a 400
    openai_strict_problems   what is still refused after openai-agents' strict conversion
    anthropic_problems       what Anthropic's Messages API refuses in `input_schema`
    gemini_problems          what Gemini's function-declaration Schema refuses or cannot map
    tool_name_problems       the tool-name rule of each provider
    uri_template_problems    RFC 6570 level-1 resource templates
    prompt_argument_problems prompt argument names and descriptions

Each rule carries a one-line source above it. Rules that could not be sourced are left out (see the
helper's report); where a rule is this project's own choice the comment says so.
"""

import json
import re

import jsonschema
from jsonschema_specifications import REGISTRY

# --- walking a schema -------------------------------------------------------------------------

# Keywords whose value is one subschema, a list of subschemas, or a map of name -> subschema
# (JSON Schema 2020-12 core §10 "A Vocabulary for Applying Subschemas", plus `definitions`).
_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")
_ONE += ("unevaluatedItems", "unevaluatedProperties", "contentSchema")
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key(path, name):
    return f"{path}.{name}" if _IDENT.fullmatch(name) else f"{path}[{json.dumps(name)}]"


def walk(schema, path="$"):
    """(path, node) for `schema` and every subschema in it, parents first. Boolean schemas are skipped."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    for keyword in _ONE:
        sub = schema.get(keyword)
        if isinstance(sub, dict):
            yield from walk(sub, f"{path}.{keyword}")
        elif keyword == "items" and isinstance(sub, list):  # draft 2019 tuple form
            for i, s in enumerate(sub):
                yield from walk(s, f"{path}.items[{i}]")
    for keyword in _LIST:
        subs = schema.get(keyword)
        if isinstance(subs, list):
            for i, s in enumerate(subs):
                yield from walk(s, f"{path}.{keyword}[{i}]")
    for keyword in _MAP:
        subs = schema.get(keyword)
        if isinstance(subs, dict):
            for name, s in subs.items():
                yield from walk(s, _key(f"{path}.{keyword}", name))


def patterns(schema):
    """(path, regex) of every `pattern` value and `patternProperties` key."""
    for path, node in walk(schema):
        if isinstance(node.get("pattern"), str):
            yield f"{path}.pattern", node["pattern"]
        for regex in node.get("patternProperties") or {}:
            yield _key(f"{path}.patternProperties", regex), regex


def _types(node):
    t = node.get("type")
    return [t] if isinstance(t, str) else list(t) if isinstance(t, list) else []


def _is_object(node):
    return "object" in _types(node) or ("type" not in node and "properties" in node)


def _union_branches(schema):
    """(path, branch) of every anyOf/oneOf branch."""
    for path, node in walk(schema):
        for keyword in ("anyOf", "oneOf"):
            for i, branch in enumerate(node.get(keyword) or []):
                if isinstance(branch, dict):
                    yield f"{path}.{keyword}[{i}]", branch


def lookarounds(regex):
    """The lookaround groups in `regex` (`(?=`, `(?!`, `(?<=`, `(?<!`), outside escapes and classes."""
    found, i, in_class = [], 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif regex.startswith(("(?=", "(?!"), i):
            found.append(regex[i : i + 3])
        elif regex.startswith(("(?<=", "(?<!"), i):
            found.append(regex[i : i + 4])
        i += 1
    return found


# --- regex engines ----------------------------------------------------------------------------


def re2_problems(schema):
    import re2  # pip google-re2

    options = re2.Options()
    options.log_errors = False
    problems = []
    for path, regex in patterns(schema):
        # RE2 syntax (github.com/google/re2/wiki/Syntax) is what Go's regexp and Rust's regex accept: no lookaround.
        try:
            re2.compile(regex, options=options)
        except re2.error as e:
            reason = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
            problems.append(f"{path}: does not compile under RE2 ({reason})")
    return problems


def ecma_problems(schema):
    import regress  # pip regress: Rust's ECMAScript regex engine

    problems = []
    for path, regex in patterns(schema):
        # JSON Schema 2020-12 core §6.4: patterns SHOULD be ECMA-262 regexes; Ajv (the TypeScript SDK's validator)
        # compiles them with the 'u' flag (ajv lib/vocabularies/validation/pattern.ts, option unicodeRegExp).
        try:
            regress.Regex(regex, "u")
        except regress.RegressError as e:
            problems.append(f"{path}: not an ECMAScript RegExp with the 'u' flag ({e})")
    return problems


# --- the portable subset (DESIGN.md) ----------------------------------------------------------

JSON_SCHEMA_KEYWORDS = frozenset(
    key
    for vocabulary in ("core", "applicator", "unevaluated", "validation", "meta-data", "format-annotation", "content")
    for key in REGISTRY.contents(f"https://json-schema.org/draft/2020-12/meta/{vocabulary}").get("properties", {})
)
# MCP 2026-07-28 (SEP-2243, custom headers from tool parameters): a property's `x-mcp-header` names its header.
MCP_KEYWORDS = frozenset({"x-mcp-header"})


def portable_problems(schema):
    """DESIGN.md "Published schemas: the portable subset" (the intersection of the providers below)."""
    problems = []
    # DESIGN.md: the root is an object schema, with no oneOf/anyOf/allOf (Anthropic and OpenAI refuse them).
    if "object" not in _types(schema):
        problems.append(f'$.type: the root must be "type": "object" (got {schema.get("type")!r})')
    for keyword in ("oneOf", "anyOf", "allOf"):
        if keyword in schema:
            problems.append(f"$.{keyword}: no {keyword} at the root")
    for path, regex in patterns(schema):
        # DESIGN.md: patterns without lookaround (JSON Schema's `$` already means end of input).
        if lookarounds(regex):
            problems.append(f"{path}: lookaround {', '.join(lookarounds(regex))} in a published pattern")
    # (That every pattern compiles under RE2 and as an ECMAScript RegExp is the `re2` and `ecma` targets.)
    for path, branch in _union_branches(schema):
        # DESIGN.md: every union branch typed (smolagents KeyError: 'type'; Gemini any_of[i].type "").
        if "type" not in branch:
            problems.append(f"{path}: a union branch without a `type`")
    for path, node in walk(schema):
        # DESIGN.md: string enums only (integer choices as bounds).
        values = list(node.get("enum") or []) + ([node["const"]] if "const" in node else [])
        if any(not isinstance(v, str) for v in values):
            problems.append(f"{path}: enum/const with a non-string value {values!r} (string enums only)")
        elif values and _types(node) != ["string"]:
            problems.append(f'{path}: a string enum/const without "type": "string"')
        # DESIGN.md: `additionalProperties` explicit on every object schema.
        if _is_object(node) and "additionalProperties" not in node:
            problems.append(f"{path}: an object schema without an explicit `additionalProperties`")
        # DESIGN.md: no server-only or unknown keywords in the published view (x-mcp-header is MCP's own).
        for key in node:
            if key not in JSON_SCHEMA_KEYWORDS and key not in MCP_KEYWORDS:
                problems.append(f"{_key(path, key)}: {key!r} is not a JSON Schema 2020-12 keyword")
    return problems


# --- OpenAI -----------------------------------------------------------------------------------


def _metaschema_problems(schema, who):
    problems = []
    # OpenAI validates parameters against the meta-schema ("None is not of type 'array'", yomorun/yomo#860);
    # Anthropic: "input_schema: JSON schema is invalid. It must match JSON Schema draft 2020-12" (acomagu/...#6).
    for error in jsonschema.Draft202012Validator(jsonschema.Draft202012Validator.META_SCHEMA).iter_errors(schema):
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(f"{where}: not valid JSON Schema 2020-12 ({error.message}) [{who}]")
    return problems


def openai_problems(schema):
    """What OpenAI's function calling refuses without strict mode (400 invalid_function_parameters)."""
    problems = _metaschema_problems(schema, "openai")
    # "schema must have type 'object' and not have 'oneOf'/'anyOf'/'allOf'/'enum'/'not' at the top level"
    # (nspady/google-calendar-mcp#39, langchain-ai/langchainjs#9804).
    if schema.get("type") != "object":
        problems.append(f"$.type: schema must have type 'object' (got {schema.get('type')!r})")
    for keyword in ("oneOf", "anyOf", "allOf", "enum", "not"):
        if keyword in schema:
            problems.append(f"$.{keyword}: '{keyword}' is not allowed at the top level")
    for path, regex in patterns(schema):
        # "Invalid JSON schema: regex lookaround is not supported. Found at $.properties.fileKey.pattern."
        # (anomalyco/opencode#32073, vercel/ai#21037).
        if lookarounds(regex):
            problems.append(f"{path}: regex lookaround is not supported")
    for path, node in walk(schema):
        # "In context=('properties', 'paths'), array schema missing items." (sigoden/aichat#1049).
        if "array" in _types(node) and "items" not in node and "prefixItems" not in node:
            problems.append(f"{path}: array schema missing items")
    return problems


# platform.openai.com/docs/guides/structured-outputs#supported-schemas ("Supported properties": string formats).
OPENAI_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
# Same page, "Some type-specific keywords are not yet supported": composition.
OPENAI_STRICT_UNSUPPORTED = ("allOf", "not", "dependentRequired", "dependentSchemas", "if", "then", "else")


class StrictConversionError(Exception):
    """openai-agents' converter would raise here: the SDK then sends the tool non-strict."""


def agents_strict_conversion(schema):
    """A model (written from its behaviour, not copied) of openai-agents' `ensure_strict_json_schema` as
    `MCPUtil.to_function_tool(convert_schemas_to_strict=True)` calls it (src/agents/strict_schema.py,
    src/agents/mcp/util.py, openai-agents-python at 7f7a44f, 2026-08): returns the converted copy, or raises
    StrictConversionError with the SDK's reason. What it does, node by node (properties, items, anyOf, oneOf,
    allOf, $defs): a missing `type` beside `properties` becomes "object"; an object without
    `additionalProperties` gets `false`; any other `additionalProperties` (true, {} or a schema) raises; so does
    an object with no declared properties that is not closed (`_reject_open_objects`, on for MCP tools with a
    non-empty schema); every property becomes required; `oneOf` becomes `anyOf`; a `default: null` is dropped.
    At the root, `anyOf` (including one made from `oneOf`) raises. `$ref` is not modelled (raises here)."""
    reject_open = schema != {}

    def convert(node, path, depth):
        if depth > 100:
            raise StrictConversionError(f"{path}: JSON schema is too deeply nested")
        if not isinstance(node, dict):
            raise StrictConversionError(f"{path}: expected a schema object")
        node = dict(node)
        if "$ref" in node:
            raise StrictConversionError(f"{path}: $ref (not modelled by this lint)")
        for keyword in ("$defs", "definitions"):
            if isinstance(node.get(keyword), dict):
                node[keyword] = {k: convert(v, f"{path}.{keyword}.{k}", depth + 1) for k, v in node[keyword].items()}
        if "type" not in node and isinstance(node.get("properties"), dict):
            node["type"] = "object"
        elif "type" not in node and node.get("additionalProperties", False) is not False:
            raise StrictConversionError(f"{path}: additionalProperties should not be set for object types")
        is_object = "object" in _types(node)
        if reject_open and is_object and not node.get("properties") and node.get("additionalProperties") is not False:
            raise StrictConversionError(f"{path}: an object that permits undeclared properties")
        if is_object and "additionalProperties" not in node:
            node["additionalProperties"] = False
        elif is_object and node["additionalProperties"] is not False:
            raise StrictConversionError(f"{path}: additionalProperties should not be set for object types")
        if isinstance(node.get("properties"), dict):
            node["required"] = list(node["properties"])
            node["properties"] = {
                k: convert(v, _key(f"{path}.properties", k), depth + 1) for k, v in node["properties"].items()
            }
        if isinstance(node.get("items"), dict):
            node["items"] = convert(node["items"], f"{path}.items", depth + 1)
        branches = [
            convert(b, f"{path}.{kw}[{i}]", depth + 1)
            for kw in ("anyOf", "oneOf")
            for i, b in enumerate(node.get(kw) or [])
        ]
        node.pop("oneOf", None)
        if branches:
            node["anyOf"] = branches
        if isinstance(node.get("allOf"), list):
            node["allOf"] = [convert(b, f"{path}.allOf[{i}]", depth + 1) for i, b in enumerate(node["allOf"])]
        if "default" in node and node["default"] is None:
            del node["default"]
        return node

    converted = convert(schema, "$", 1)
    if isinstance(converted.get("anyOf"), list):
        raise StrictConversionError("$: the root of a strict JSON schema must not use `anyOf`")
    if isinstance(converted.get("type"), list) and converted["type"] != ["object"]:
        raise StrictConversionError("$: the root of a strict JSON schema must be a non-nullable object")
    return converted


def openai_strict_outcome(schema):
    """("strict", None) when openai-agents sends the tool with strict: true, else ("fallback", reason)."""
    try:
        agents_strict_conversion(schema)
    except StrictConversionError as e:
        return "fallback", str(e)
    return "strict", None


def openai_strict_problems(schema):
    """What OpenAI refuses after openai-agents' strict conversion. When the converter raises, the SDK logs it and
    sends the tool non-strict (src/agents/mcp/util.py: `except Exception` keeps `is_strict = False`): that is
    accepted behaviour, and what remains is then what non-strict function calling refuses (openai_problems).
    The openai SDK's own `to_strict_json_schema` (src/openai/lib/_pydantic.py) takes pydantic models, not MCP
    dicts, and never raises; it leaves `additionalProperties: true` in place, which strict mode then refuses."""
    try:
        converted = agents_strict_conversion(schema)
    except StrictConversionError:
        return openai_problems(schema)
    problems = openai_problems(converted)
    total_properties, enum_values, string_chars = 0, 0, 0
    for path, node in walk(converted):
        depth = path.count(".properties")
        # structured-outputs#objects-have-limitations-on-nesting-depth-and-size: up to 10 levels of nesting.
        if depth > 10:
            problems.append(f"{path}: more than 10 levels of nesting [strict]")
        # structured-outputs#some-type-specific-keywords-are-not-yet-supported (composition).
        for keyword in OPENAI_STRICT_UNSUPPORTED:
            if keyword in node:
                problems.append(f"{path}.{keyword}: '{keyword}' is not supported in strict mode [strict]")
        # structured-outputs#supported-properties: the string formats strict mode knows.
        if isinstance(node.get("format"), str) and node["format"] not in OPENAI_STRICT_FORMATS:
            problems.append(f"{path}.format: format {node['format']!r} is not supported in strict mode [strict]")
        # structured-outputs#additionalproperties-false-must-always-be-set-in-objects.
        if _is_object(node) and node.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties: false must always be set in objects [strict]")
        # structured-outputs#all-fields-must-be-required.
        props = node.get("properties") or {}
        if set(props) - set(node.get("required") or []):
            problems.append(f"{path}: all fields must be required [strict]")
        total_properties += len(props)
        enum_values += len(node.get("enum") or [])
        string_chars += sum(len(k) for k in props)
        string_chars += sum(
            len(str(v)) for v in (node.get("enum") or []) + ([node["const"]] if "const" in node else [])
        )
    # structured-outputs#objects-have-limitations-on-nesting-depth-and-size: up to 5000 object properties.
    if total_properties > 5000:
        problems.append(f"$: {total_properties} object properties (at most 5000) [strict]")
    # structured-outputs#limitations-on-enum-size: up to 1000 enum values.
    if enum_values > 1000:
        problems.append(f"$: {enum_values} enum values (at most 1000) [strict]")
    # structured-outputs#limitations-on-total-string-size: names, enum and const values <= 120,000 characters.
    if string_chars > 120_000:
        problems.append(f"$: {string_chars} characters of names and enum values (at most 120,000) [strict]")
    return problems


# --- Anthropic --------------------------------------------------------------------------------


def anthropic_problems(schema):
    """What Anthropic's Messages API refuses in a tool's `input_schema` (non-strict tool use)."""
    problems = _metaschema_problems(schema, "anthropic")
    # anthropic-sdk-python src/anthropic/types/tool_param.py: InputSchema `type: Required[Literal["object"]]`.
    if schema.get("type") != "object":
        problems.append(f"$.type: input_schema must have type 'object' (got {schema.get('type')!r})")
    # "input_schema does not support oneOf, allOf, or anyOf at the top level" (anthropics/claude-code#5319).
    for keyword in ("oneOf", "allOf", "anyOf"):
        if keyword in schema:
            problems.append(f"$.{keyword}: input_schema does not support {keyword} at the top level")
    return problems


# --- Gemini -----------------------------------------------------------------------------------

# google-genai types.Schema (google/genai/types.py, python-genai at 6680718, 2026-08), the function-declaration
# `parameters` object (a subset of OpenAPI 3.0), with its JSON field names. `$ref`/`$defs` are resolved by
# google-genai before sending. `additionalProperties` is a Schema field on Vertex AI; the Developer API refuses it
# (vercel/ai#6933) but google-genai's MCP conversion drops it (Schema.from_json_schema skips
# additional_properties) and `parametersJsonSchema` accepts it, so it is not flagged: DESIGN.md needs it explicit.
GEMINI_SCHEMA_FIELDS = frozenset(
    {"additionalProperties", "anyOf", "default", "description", "enum", "example", "format", "items", "maxItems"}
    | {"maxLength", "maxProperties", "maximum", "minItems", "minLength", "minProperties", "minimum", "nullable"}
    | {"pattern", "properties", "propertyOrdering", "required", "title", "type", "$ref", "$defs"}
)
# Not flagged either, because no published schema can avoid it: google-genai's MCP conversion (mcp_to_gemini_tool,
# 3.6.1) raises AttributeError on every boolean `additionalProperties` (googleapis/python-genai#2393, #2476, fixes
# open); the portable subset needs them explicit, and JSON Schema allows booleans there.
# google-genai types.Type: the one type a Schema node has.
GEMINI_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
# ai.google.dev FunctionDeclaration.parameters: "Parameter names must start with a letter or an underscore and must
# only contain chars a-z, A-Z, 0-9, or underscores with a maximum length of 64."
GEMINI_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def gemini_problems(schema):
    """What Gemini refuses in a function declaration's parameters, or what google-genai cannot map."""
    problems = []
    # FunctionDeclaration.parametersJsonSchema: "The schema must describe an object where the properties are the
    # parameters to the function."
    if schema.get("type") != "object":
        problems.append(f"$.type: the parameters must describe an object (got {schema.get('type')!r})")
    for name in schema.get("properties") or {}:
        if not GEMINI_PARAMETER_NAME.fullmatch(name):
            problems.append(
                f"{_key('$.properties', name)}: parameter name {name!r} is not [A-Za-z_][A-Za-z0-9_]{{0,63}}"
            )
    for path, node in walk(schema):
        for key in node:
            # x-* extensions: "Unknown name ... Cannot find field" (tashfeenahmed/freellmapi#420); x-mcp-header is
            # MCP's own but Gemini knows no x- field either.
            if key.startswith("x-"):
                problems.append(f"{_key(path, key)}: Gemini has no {key!r} field (Unknown name, 400)")
            # Any keyword the Schema object has no field for: "Invalid JSON payload received. Unknown name
            # \"uniqueItems\" ... Cannot find field." (decolua/9router#3018; "const": zed-industries/zed#44875;
            # "exclusiveMinimum": pizza-bot-app/pizza-bot#62). google-genai's MCP path drops them instead, which for
            # `const` leaves an untyped node.
            elif key not in GEMINI_SCHEMA_FIELDS:
                problems.append(f"{_key(path, key)}: Gemini's Schema has no {key!r} field (Unknown name, 400)")
        types = _types(node)
        # The Schema's `type` is one enum value: a list fails ("Proto field is not repeating",
        # brightwave-inc/tidebreak#1516); use anyOf with a {"type": "null"} branch, or `nullable`.
        if isinstance(node.get("type"), list):
            problems.append(f"{path}.type: a list of types {node['type']!r} (Gemini's Schema takes one type)")
        elif types and types[0] not in GEMINI_TYPES:
            problems.append(f"{path}.type: unknown type {types[0]!r}")
        # "type and anyOf cannot be both populated" (google-gemini/gemini-cli#4121).
        if types and "anyOf" in node:
            problems.append(f"{path}: type and anyOf cannot be both populated")
        # Every node typed: untyped anyOf branches fail "Invalid value at '...any_of[0].type' ... \"\""
        # (zereight/gitlab-mcp#166; gemini-cli#5694: "Gemini function calling requires types on all properties").
        if not types and "anyOf" not in node and path != "$":
            problems.append(f"{path}: no `type` (Gemini requires a type on every schema)")
        # "enum: only allowed for STRING type" (JetBrains/mcp-jetbrains#71, decolua/9router#359); values must be
        # strings: "Invalid value at '...enum[0]' (TYPE_STRING), 2" (microsoft/azure-devops-mcp#145).
        if "enum" in node:
            if types != ["string"]:
                problems.append(f"{path}.enum: enum only allowed for STRING type (type is {node.get('type')!r})")
            if any(not isinstance(v, str) for v in node["enum"]):
                problems.append(f"{path}.enum: enum values must be strings (got {node['enum']!r})")
    return problems


# --- names, resource templates, prompts ----------------------------------------------------------

# openai-python src/openai/types/shared_params/function_definition.py: "Must be a-z, A-Z, 0-9, or contain
# underscores and dashes, with a maximum length of 64."
OPENAI_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Anthropic Messages API, tools[].name: "Must match the regex ^[a-zA-Z0-9_-]{1,64}$."
ANTHROPIC_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
# ai.google.dev FunctionDeclaration.name: "Must start with a letter or an underscore. Must be a-z, A-Z, 0-9, or
# contain underscores, dots and dashes, with a maximum length of 64."
GEMINI_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")


def tool_name_problems(name):
    problems = []
    for who, rule in (("openai", OPENAI_TOOL_NAME), ("anthropic", ANTHROPIC_TOOL_NAME), ("gemini", GEMINI_TOOL_NAME)):
        if not rule.fullmatch(name):
            problems.append(f"tool name {name!r} does not match {rule.pattern} [{who}]")
    return problems


# RFC 6570 §2.1 literals: any character except CTL, SP, DQUOTE, "'", "%" (aside from pct-encoded), "<", ">", "\",
# "^", "`", "{", "|", "}"; §2.3 varname = varchar *( ["."] varchar ), varchar = ALPHA / DIGIT / "_" / pct-encoded.
_LITERAL = re.compile(r"(?:[^\x00-\x20\x7f\"'%<>\\^`{|}]|%[0-9A-Fa-f]{2})*")
_VARNAME = re.compile(r"(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})+(?:\.(?:[A-Za-z0-9_]|%[0-9A-Fa-f]{2})+)*")


def uri_template_problems(template, variable):
    """A level-1 RFC 6570 template (§1.2: simple string expansion, `{var}`) whose only variable is `variable`."""
    problems, names = [], []
    parts = re.split(r"(\{[^{}]*\})", template)
    for part in parts:
        if part.startswith("{") and part.endswith("}"):
            body = part[1:-1]
            # RFC 6570 §1.2: level 1 has no operator and one variable per expression, without modifiers.
            if not _VARNAME.fullmatch(body):
                problems.append(f"{template}: expression {part} is not a level-1 {{varname}}")
            names.append(body)
        elif not _LITERAL.fullmatch(part):
            problems.append(f"{template}: literal {part!r} has a character RFC 6570 §2.1 excludes")
    if names != [variable]:
        problems.append(f"{template}: names the variables {names!r}, expected exactly [{variable!r}]")
    return problems


# Project rule (no provider source): prompt arguments are identifier-shaped so every client can make them form
# fields or keyword arguments, the same shape Gemini asks of parameter names.
PROMPT_ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def prompt_argument_problems(prompt_name, arguments):
    """`arguments`: the published prompts/list entries, [{"name", "description", "required"}]."""
    problems = []
    for argument in arguments:
        name = argument.get("name")
        if not isinstance(name, str) or not PROMPT_ARGUMENT_NAME.fullmatch(name):
            problems.append(f"{prompt_name}.{name}: argument name is not {PROMPT_ARGUMENT_NAME.pattern}")
        # MCP PromptArgument.description: what the client shows for the argument; a blank one says nothing.
        if not isinstance(argument.get("description"), str) or not argument["description"].strip():
            problems.append(f"{prompt_name}.{name}: argument without a description")
        # MCP PromptArgument.required is a boolean.
        if "required" in argument and not isinstance(argument["required"], bool):
            problems.append(f"{prompt_name}.{name}: `required` is not a boolean")
    return problems


TARGETS = {
    "re2": re2_problems,
    "ecma": ecma_problems,
    "portable": portable_problems,
    "openai": openai_problems,
    "openai_strict": openai_strict_problems,
    "anthropic": anthropic_problems,
    "gemini": gemini_problems,
}
