"""The SageMaker Python SDK v2's RecordIO writers, as the reference the project's codec is held to."""

import io

from sagemaker.amazon.common import write_numpy_to_dense_tensor, write_spmatrix_to_sparse_tensor


def sdk_sparse(matrix, labels=None) -> bytes:
    buffer = io.BytesIO()
    write_spmatrix_to_sparse_tensor(buffer, matrix, labels)
    return buffer.getvalue()


def sdk_dense(array, labels=None) -> bytes:
    buffer = io.BytesIO()
    write_numpy_to_dense_tensor(buffer, array, labels)
    return buffer.getvalue()
