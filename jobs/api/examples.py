"""The OpenAPI examples of the API's bodies (shown at /api/docs/; tests check them
against the real responses)."""

from typing import Any

ASSET_EXAMPLE = {
    "id": "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
    "kind": "output",
    "job": "8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6",
    "width": 1280,
    "height": 768,
    "format": "JPEG",
    "byte_size": 182044,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "created_at": "2025-06-01T12:00:30Z",
    "url": "https://studio.example.com/api/v1/assets/0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d/"
    "download?expires=1748782830&signature=3xJ…",
    "expires_at": "2025-06-01T13:00:30Z",
}


JOB_ID = "8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6"


JOB_URLS = {
    "self": f"https://studio.example.com/api/v1/jobs/{JOB_ID}",
    "cancel": f"https://studio.example.com/api/v1/jobs/{JOB_ID}/cancel",
    "rerun": f"https://studio.example.com/api/v1/jobs/{JOB_ID}/rerun",
}


JOB_EXAMPLE: dict[str, Any] = {
    "id": JOB_ID,
    "model": "bria-product-packshot",
    "status": "succeeded",
    "params": {"background_color": "#FAFAFA", "content_moderation": True, "force_rmbg": False},
    "price": 4,
    "created_at": "2025-06-01T12:00:00Z",
    "started_at": "2025-06-01T12:00:01Z",
    "completed_at": "2025-06-01T12:00:30Z",
    "error": None,
    "waiting": None,
    "queue": None,
    "outputs": [ASSET_EXAMPLE],
    "urls": JOB_URLS,
    "batch": None,
    "notice": "The photo is small: the product (512 px across) was enlarged 3.3x to fill the "
    "2000 x 2000 packshot, so it may look soft. A photo in which the product is at least "
    "850 px across gives a sharp result.",
}


JOB_QUEUED_EXAMPLE = {
    **JOB_EXAMPLE,
    "status": "queued",
    "started_at": None,
    "completed_at": None,
    "queue": {"position": 3, "ahead": 2, "estimated_start_at": "2025-06-01T12:00:04Z"},
    "outputs": [],
    "notice": "",
}


JOB_FAILED_EXAMPLE = {
    **JOB_EXAMPLE,
    "status": "failed",
    "error": {
        "code": "provider_failed",
        "message": "Segmind could not make the image: the input image has no product.",
    },
    "outputs": [],
    "notice": "",
}


JOB_WAITING_EXAMPLE = {
    **JOB_QUEUED_EXAMPLE,
    "status": "waiting_for_provider",
    "queue": None,
    "waiting": {
        "code": "provider_insufficient_credits",
        "message": "Segmind, the service that makes these images, is out of credit on "
        "ProductStudio's side. This job waits and is sent as soon as Segmind takes work "
        "again; we have been alerted. Nothing has been charged: you can cancel it to get its "
        "credits back now, and if it cannot be sent within 6 hours, it fails and no credit "
        "is taken.",
        "since": "2025-06-01T12:00:00Z",
        "gives_up_at": "2025-06-02T12:00:00Z",
    },
}


JOB_CANCELED_EXAMPLE = {
    **JOB_QUEUED_EXAMPLE,
    "status": "canceled",
    "queue": None,
    "completed_at": "2025-06-01T12:00:05Z",
}


MODEL_EXAMPLE = {
    "slug": "bria-product-packshot",
    "title": "Bria Product Packshot",
    "summary": "A clean marketplace packshot: background removed, centred.",
    "kind": "v2",
    "typical_seconds": 16.56,
    "input_image_params": ["image_url"],
    "engine": "segmind",
    "available": True,
    "price": {"credits": 4, "credits_per_megapixel": 0, "own_key": False, "default_price": 4},
    "defaults": {"background_color": "#FFFFFF", "content_moderation": True, "force_rmbg": False},
    "output_size": None,
    "params_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "image_url": {"type": "string", "format": "uri", "contentMediaType": "image/*"},
            "background_color": {
                "type": "string",
                "default": "#FFFFFF",
                "pattern": "^(transparent|#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6})$",
            },
            "content_moderation": {"type": "boolean", "default": True},
            "force_rmbg": {"type": "boolean", "default": False},
            "sku": {"type": "string"},
        },
        "required": ["image_url"],
        "additionalProperties": False,
    },
}


PRESET_EXAMPLE = {
    "id": 42,
    "slug": "house-white",
    "name": "House white",
    "description": "Our shop's packshots",
    "model": "bria-product-packshot",
    "params": {"background_color": "#FAFAFA"},
    "backdrop": "",
    "system": False,
    "created_at": "2025-06-01T12:00:00Z",
    "updated_at": "2025-06-01T12:00:00Z",
    "urls": {
        "self": "https://studio.example.com/api/v1/presets/42",
        "copy": "https://studio.example.com/api/v1/presets/42/copy",
    },
}


BATCH_EXAMPLE = {
    "id": "3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70",
    "name": "Summer mugs",
    "created_at": "2025-06-01T12:00:00Z",
    "completed_at": None,
    "progress": {
        "total": 2,
        "queued": 1,
        "running": 1,
        "waiting_for_provider": 0,
        "succeeded": 0,
        "failed": 0,
        "canceled": 0,
        "done": 0,
        "percent": 0,
    },
    "urls": {
        "self": "https://studio.example.com/api/v1/batches/3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70",
        "jobs": "https://studio.example.com/api/v1/jobs?batch=3f1c2a9e-5b7d-4c8e-9a10-2b3c4d5e6f70",
    },
    "jobs": ["8d9e0f1a-2b3c-4d5e-8f70-819203a4b5c6", "9e0f1a2b-3c4d-4e5f-8a81-92a3b4c5d6e7"],
    "estimated_finish_at": "2025-06-01T12:00:45Z",
}
