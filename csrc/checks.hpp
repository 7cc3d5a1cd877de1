// Helpers shared by the kernels: for the scoring kernels (mahalanobis.cpp, topn.cpp) a strided
// 2-D view, the parallel threshold and the argument checks whose messages the Python tests
// match; for the simulator's kernels (projection.cpp, exposure.cpp) the C-contiguous array test.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace xadt {

namespace py = pybind11;

// Below this many element operations a parallel region costs more than it saves.
inline constexpr py::ssize_t PARALLEL_MIN = py::ssize_t(1) << 15;

// A read-only strided 2-D view (strides in elements), so non-contiguous inputs need no copy.
template <typename T> struct View2 {
    const T *data;
    py::ssize_t rows, cols, s0, s1;
    const T &operator()(py::ssize_t i, py::ssize_t j) const { return data[i * s0 + j * s1]; }
};

template <typename T> View2<T> view2(const py::array &a) {
    constexpr auto item = static_cast<py::ssize_t>(sizeof(T));
    return {static_cast<const T *>(a.data()), a.shape(0), a.shape(1), a.strides(0) / item,
            a.strides(1) / item};
}

inline std::string shape_text(const py::array &a) {
    std::ostringstream out;
    out << "(";
    for (py::ssize_t k = 0; k < a.ndim(); ++k) {
        out << (k ? ", " : "") << a.shape(k);
        if (a.ndim() == 1) out << ",";
    }
    out << ")";
    return out.str();
}

inline void require_ndim(const char *fn, const char *name, const py::array &a, py::ssize_t ndim) {
    if (a.ndim() != ndim) {
        std::ostringstream msg;
        msg << fn << ": " << name << " must be " << ndim << "-D, got shape " << shape_text(a);
        throw std::invalid_argument(msg.str());
    }
}

// Every argument must share x's dtype (the wrapper casts); strides must be whole elements.
template <typename T> void require_layout(const char *fn, const char *name, const py::array &a) {
    if (!a.dtype().is(py::dtype::of<T>())) {
        std::ostringstream msg;
        msg << fn << ": " << name << " has dtype " << std::string(py::str(a.dtype()))
            << " but x has " << std::string(py::str(py::dtype::of<T>()));
        throw std::invalid_argument(msg.str());
    }
    const auto addr = reinterpret_cast<std::uintptr_t>(a.data());
    bool aligned = addr % alignof(T) == 0;
    for (py::ssize_t k = 0; k < a.ndim(); ++k)
        aligned = aligned && a.strides(k) % static_cast<py::ssize_t>(sizeof(T)) == 0;
    if (!aligned) {
        std::ostringstream msg;
        msg << fn << ": " << name << " is not aligned to its element size";
        throw std::invalid_argument(msg.str());
    }
}

// Whether a is a C-contiguous ndim-D array of T: the simulator's kernels take no strides.
template <typename T> bool is_c_array(const py::array &a, py::ssize_t ndim) {
    return a.ndim() == ndim && a.dtype().equal(py::dtype::of<T>()) &&
           (a.flags() & py::array::c_style) != 0;
}

}  // namespace xadt
