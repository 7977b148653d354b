"""Five-stage prompts: stage metadata, editable template sets, chat messages, output parsing.

Imports nothing else from this project; the tokenizer helpers accept any Hugging Face
tokenizer that has a chat template.
"""

from .chat import (
    Message,
    TurnIds,
    assistant_closing,
    close_turn_ids,
    direct_messages,
    discriminator_messages,
    discriminator_turn,
    generator_messages,
    generator_turn,
    next_turn_ids,
    render_ids,
)
from .parsing import (
    PYTHON_LANGS,
    CodeBlock,
    ExtractedCode,
    ParseConfig,
    defines_function,
    extract_code,
    fenced_blocks,
    format_code,
    function_signature,
)
from .stages import CODE_STAGE, NUM_STAGES, STAGES, Stage, get_stage
from .templates import TEMPLATE_FIELDS, TemplateError, TemplateSet, available_template_sets, load_templates
from .testcases import REJECTION_REASONS, ParsedTests, dedup_key, extract_tests

__all__ = [
    "CODE_STAGE", "NUM_STAGES", "PYTHON_LANGS", "REJECTION_REASONS", "STAGES", "TEMPLATE_FIELDS",
    "CodeBlock", "ExtractedCode", "Message", "ParseConfig", "ParsedTests", "Stage", "TemplateError",
    "TemplateSet", "TurnIds", "assistant_closing", "available_template_sets", "close_turn_ids",
    "dedup_key", "defines_function", "direct_messages", "discriminator_messages", "discriminator_turn",
    "extract_code", "extract_tests", "fenced_blocks", "format_code", "function_signature",
    "generator_messages", "generator_turn", "get_stage", "load_templates", "next_turn_ids", "render_ids",
]
