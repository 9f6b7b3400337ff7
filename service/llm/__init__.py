"""Talking to models: the chat protocol, the OpenAI-compatible client, the embedded extractive
answerer and the resilience layer.

The front door: ``promptctl`` (and anything outside the service) imports these names from
here, never from the modules inside (tests/architecture/test_layers.py).
"""

from service.llm.chat import ChatModel, ChatRequest, ChatResponse
from service.llm.openai_chat import OpenAIChatModel
from service.llm.resilience.caller import ResilientChatModel
from service.llm.resilience.config import ResilienceConfig

__all__ = [
    "ChatModel",
    "ChatRequest",
    "ChatResponse",
    "OpenAIChatModel",
    "ResilienceConfig",
    "ResilientChatModel",
]
