#include <pybind11/pybind11.h>
namespace py = pybind11;
void register_window_map(py::module_ &) {}
