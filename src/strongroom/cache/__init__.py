"""In-process caches of the read path, bounded and invalidated by the change feed."""

from strongroom.cache.lru import LRU
from strongroom.cache.secrets import CachedSecret, SecretCache, cache_key, fresh_view

__all__ = ["LRU", "CachedSecret", "SecretCache", "cache_key", "fresh_view"]
