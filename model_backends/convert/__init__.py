"""`model-backend convert`: a Mistral/Llama Hugging Face checkpoint to a GGUF file for llama.cpp.

The path from the green model's weights (Vistral, transformers) to the llama engine: read
config.json and tokenizer.json (`hparams`, `vocab`), map and permute the tensors (`tensors`),
stream them from the safetensors shards (`checkpoint`) into gguf's writer (`writer`), then let
llama.cpp's own quantizer make the smaller types (`quantize`). `pipeline` runs it all with
nothing left behind on failure; `report` is what the command shows. Modules are imported where
used, so the serving CLI starts without gguf or safetensors.
"""
