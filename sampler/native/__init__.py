"""Native implementations of the LLaDA and Dream architectures: official checkpoints load by
parameter name with the installed transformers, no remote code, and decode with a block KV cache.
"""

from __future__ import annotations

from .config import ARCHITECTURES, NativeConfig, native_config
from .loading import RENAMES, checkpoint_files, load_native_network
from .modeling import BidirectionalTransformer, BlockKVCache

__all__ = ["NativeConfig", "ARCHITECTURES", "native_config", "BidirectionalTransformer",
           "BlockKVCache", "load_native_network", "checkpoint_files", "RENAMES"]
