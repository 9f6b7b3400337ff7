"""Talking to models: the chat protocol, the OpenAI-compatible client, the embedded extractive
answerer and the resilience layer.
"""
