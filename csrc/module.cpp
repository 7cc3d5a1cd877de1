// The xadt._kernels module: each kernel family registers its own functions.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_patches(py::module_ &m);
void register_window_map(py::module_ &m);
void register_mahalanobis(py::module_ &m);
void register_topn(py::module_ &m);
void register_projection(py::module_ &m);
void register_exposure(py::module_ &m);
void register_cuda(py::module_ &m);

PYBIND11_MODULE(_kernels, m) {
    m.doc() = "xadt compiled kernels; use the typed wrappers in xadt.kernels instead.";
#ifdef XADT_WITH_CUDA
    m.attr("cuda_compiled") = true;
#else
    m.attr("cuda_compiled") = false;
#endif
    register_patches(m);
    register_window_map(m);
    register_mahalanobis(m);
    register_topn(m);
    register_projection(m);
    register_exposure(m);
    register_cuda(m);
}
