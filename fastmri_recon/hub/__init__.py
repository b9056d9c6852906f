"""Published weights: the manifest, loading from local folders or the Hugging Face Hub, publishing.

- `manifest`: ``weights_manifest.json`` (its JSON Schema checked by `schema`, without jsonschema);
- `locate` / `download`: a manifest name, an ``hf://`` URL or a local path -> a weights file;
- `load`: sha256 verified, model built by the registry, ``.weights.h5`` loaded (`from_pretrained`), or
  a Keras-2 file of the benchmark code loaded (`from_keras2`);
- `original`: the papers' Keras-2 weights of the manifest, trusted on first use and converted once;
- `publish` / `card`: a training run -> a Hub-ready folder (weights, config, model card, figure),
  uploaded with ``huggingface_hub`` and recorded in the manifest.
"""

from fastmri_recon.hub.checksum import sha256_file, verify_sha256
from fastmri_recon.hub.download import HubFile, parse_hf_url
from fastmri_recon.hub.load import Pretrained, from_keras2, from_pretrained, load_keras2, load_pretrained
from fastmri_recon.hub.manifest import Manifest, load_manifest, validate_entry, validate_manifest

__all__ = [
    "HubFile",
    "Manifest",
    "Pretrained",
    "from_keras2",
    "from_pretrained",
    "load_keras2",
    "load_manifest",
    "load_pretrained",
    "parse_hf_url",
    "sha256_file",
    "validate_entry",
    "validate_manifest",
    "verify_sha256",
]
