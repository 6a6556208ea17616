"""Export a job's fine-tuned model: merged safetensors, GGUF (llama.cpp) and Ollama packages.

``run`` runs one export (an ``ExportSpec``) as plain Python; ``ray_task`` runs it
as a Ray task on the cluster; ``merge``, ``gguf_writer`` (with ``gguf_arch`` and ``tokenizer_meta``),
``modelfile`` (with ``prompt_formats``), ``model_card`` and ``zipstream`` are the
parts. Only ``ray_task`` imports Ray.
"""
