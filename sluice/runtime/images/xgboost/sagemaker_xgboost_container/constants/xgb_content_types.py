"""The content types the XGBoost container decodes besides CSV (``constants/xgb_content_types.py``)."""

LIBSVM = "text/libsvm"
X_LIBSVM = "text/x-libsvm"
X_PARQUET = "application/x-parquet"
X_RECORDIO_PROTOBUF = "application/x-recordio-protobuf"
