"""Document shapes and request/response models (pydantic), defined once and validated on the way in."""
