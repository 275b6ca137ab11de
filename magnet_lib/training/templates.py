"""The ChatML training template every base model of the project gets (tools, ``<tool_call>``
blocks, tool turns and generation markers for assistant-only loss), and its special tokens.
Shared by the tiny default model (:mod:`magnet_lib.training.base_models`) and the packaged
pretrained ones (:mod:`magnet_lib.training.pretrained`)."""

from __future__ import annotations

IM_START, IM_END, END_OF_TEXT = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
#: Where a generated assistant message ends (ChatML).
END_OF_TURN = (IM_END, END_OF_TEXT)
#: Tags of the template; added as whole tokens (not special: they survive ``decode``).
TAG_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<tools>", "</tools>"]

# One line per construct; no whitespace control, so every newline of the output is written
# explicitly as '\n' and the rendering is exactly prefix-preserving.
CHAT_TEMPLATE = "".join(
    [
        "{% if messages and messages[0].role == 'system' %}",
        "{{ '<|im_start|>system\\n' + messages[0].content }}",
        "{% if tools and 'Here is the list of functions you can call' not in messages[0].content %}",
        "{{ '\\n\\nHere is the list of functions you can call, in JSON format:\\n<tools>\\n' }}",
        "{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{% endfor %}{{ '</tools>' }}",
        "{% endif %}",
        "{{ '<|im_end|>\\n' }}",
        "{% elif tools %}",
        "{{ '<|im_start|>system\\n<tools>\\n' }}{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{% endfor %}{{ '</tools><|im_end|>\\n' }}",
        "{% endif %}",
        "{% for message in messages %}",
        "{% if message.role == 'user' %}",
        "{{ '<|im_start|>user\\n' + message.content + '<|im_end|>\\n' }}",
        "{% elif message.role == 'assistant' %}",
        "{{ '<|im_start|>assistant\\n' }}",
        "{% generation %}",
        "{{ message.content or '' }}",
        "{% for call in message.tool_calls or [] %}",
        "{% set fn = call.function if call.function is defined else call %}",
        '{{ \'<tool_call>\\n{"name": "\' + fn.name + \'", "arguments": \' }}',
        "{{ fn.arguments if fn.arguments is string else fn.arguments | tojson }}",
        "{{ '}\\n</tool_call>' }}",
        "{% endfor %}",
        "{{ '<|im_end|>' }}",
        "{% endgeneration %}",
        "{{ '\\n' }}",
        "{% elif message.role == 'tool' %}",
        "{{ '<|im_start|>tool\\n<tool_response>\\n' + message.content + '\\n</tool_response><|im_end|>\\n' }}",
        "{% endif %}",
        "{% endfor %}",
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
    ]
)
