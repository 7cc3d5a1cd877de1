// Bindings of the CUDA launchers (cuda_kernels.hpp) as xadt._kernels.cuda_*; compiled to nothing
// when the extension is built without CUDA. Use the wrappers in xadt.kernels.
#include <pybind11/pybind11.h>

#ifdef XADT_WITH_CUDA
#include "cuda_kernels.hpp"
#endif

namespace py = pybind11;

void register_cuda(py::module_ &m) {
#ifdef XADT_WITH_CUDA
    // The launchers only queue work on the caller's stream; the GIL is released while they do.
    const auto nogil = py::call_guard<py::gil_scoped_release>();
    m.def("cuda_extract_patches", &xadt::cuda::extract_patches, nogil, py::arg("view"),
          py::arg("dtype"), py::arg("height"), py::arg("width"), py::arg("channels"),
          py::arg("sy"), py::arg("sx"), py::arg("sc"), py::arg("boxes"), py::arg("n_boxes"),
          py::arg("size"), py::arg("norm"), py::arg("out"), py::arg("stream"));
    m.def("cuda_window_map", &xadt::cuda::window_map, nogil, py::arg("boxes"), py::arg("scores"),
          py::arg("n"), py::arg("height"), py::arg("width"), py::arg("exponent"), py::arg("out"),
          py::arg("stream"));
    m.def("cuda_mahalanobis", &xadt::cuda::mahalanobis, nogil, py::arg("x"), py::arg("mean"),
          py::arg("precision"), py::arg("out"), py::arg("rows"), py::arg("dim"),
          py::arg("is_double"), py::arg("stream"));
    m.def("cuda_topn_excursion", &xadt::cuda::topn_excursion, nogil, py::arg("x"),
          py::arg("mean"), py::arg("std"), py::arg("inv_corr"), py::arg("out"), py::arg("rows"),
          py::arg("dim"), py::arg("keep"), py::arg("is_double"), py::arg("stream"));
#else
    (void)m;
#endif
}
