// A thin C++ layer over the HDF5 C API: RAII handles, groups, attributes,
// whole datasets, and appendable (chunked, extensible along the first axis)
// datasets for per-step series. Every failure is a moelab::Error naming the
// file and object; HDF5's own error printing is switched off.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace moelab::h5 {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset();
  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// HDF5 native type of a C++ element type.
template <typename T>
hid_t native_type();

class Series;

// A group (or the file's root group). Paths may contain '/'.
class Group {
 public:
  Group() = default;
  Group(Handle handle, std::string file, std::string path)
      : handle_(std::move(handle)), file_(std::move(file)), path_(std::move(path)) {}

  hid_t id() const { return handle_.id(); }
  const std::string& path() const { return path_; }
  const std::string& file_name() const { return file_; }

  bool has(const std::string& name) const;        // link exists (nested paths allowed)
  bool is_group(const std::string& name) const;   // exists and is a group
  Group group(const std::string& name);           // open, creating missing levels
  Group open_group(const std::string& name) const;
  std::vector<std::string> children() const;      // link names, in creation order

  // Attributes.
  void set_attr(const std::string& name, const std::string& value);
  void set_attr(const std::string& name, const char* value) { set_attr(name, std::string(value)); }
  void set_attr(const std::string& name, int64_t value);
  void set_attr(const std::string& name, int value) { set_attr(name, static_cast<int64_t>(value)); }
  void set_attr(const std::string& name, double value);
  void set_attr(const std::string& name, const std::vector<int64_t>& values);
  void set_attr(const std::string& name, const std::vector<double>& values);
  bool has_attr(const std::string& name) const;
  std::vector<std::string> attr_names() const;
  std::string attr_string(const std::string& name) const;
  double attr_double(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;
  // Any attribute rendered as text (numbers, vectors, strings).
  std::string attr_as_text(const std::string& name) const;

  // Whole datasets.
  template <typename T>
  void write(const std::string& name, const Shape& shape, const T* data);
  template <typename T>
  void write(const std::string& name, const Tensor<T>& t) { write(name, t.shape, t.ptr()); }
  template <typename T>
  Tensor<T> read(const std::string& name) const;  // converts from the stored numeric type
  Shape dataset_shape(const std::string& name) const;
  std::string dataset_type_name(const std::string& name) const;  // "float32", "int32", ...

  // A dataset that grows along axis 0; rows have shape inner_shape.
  template <typename T>
  Series series(const std::string& name, const Shape& inner_shape = {}, int64_t chunk_rows = 64);

 private:
  std::string where(const std::string& name) const;  // "file.h5:/runs/a/name"
  Handle handle_;
  std::string file_;
  std::string path_;
};

class Series {
 public:
  Series() = default;
  Series(Handle dataset, hid_t type, Shape inner_shape, int64_t rows, std::string where)
      : dataset_(std::move(dataset)), type_(type), inner_(std::move(inner_shape)), rows_(rows),
        where_(std::move(where)) {}
  void append(const void* row);  // one row of prod(inner_shape) elements of the series' type
  template <typename T>
  void append_value(T value) {
    append(&value);
  }
  int64_t rows() const { return rows_; }
  int64_t row_size() const { return shape_numel(inner_); }
  bool valid() const { return dataset_.valid(); }

 private:
  Handle dataset_;
  hid_t type_ = H5I_INVALID_HID;
  Shape inner_;
  int64_t rows_ = 0;
  std::string where_;
};

class File : public Group {
 public:
  // Creates a new file; refuses to replace an existing one unless overwrite.
  static File create(const std::string& path, bool overwrite);
  static File open_read(const std::string& path);
  static File open_write(const std::string& path);
  // Writes everything buffered so far: a process killed after flush() leaves a
  // file that opens and holds the data up to that point.
  void flush();

 private:
  File(Handle file, Handle root, const std::string& path)
      : Group(std::move(root), path, "/"), file_(std::move(file)) {}
  static File open(const std::string& path, unsigned flags);
  Handle file_;
};

// Switch off HDF5's automatic error printing (errors become moelab::Error).
void quiet_errors();

}  // namespace moelab::h5
