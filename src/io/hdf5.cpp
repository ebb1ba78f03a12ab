#include "io/hdf5.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "core/error.hpp"

namespace moelab::h5 {

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && closer_) closer_(id_);
  id_ = H5I_INVALID_HID;
}

template <> hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <> hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }
template <> hid_t native_type<int32_t>() { return H5T_NATIVE_INT32; }
template <> hid_t native_type<int64_t>() { return H5T_NATIVE_INT64; }
template <> hid_t native_type<uint8_t>() { return H5T_NATIVE_UINT8; }
template <> hid_t native_type<uint64_t>() { return H5T_NATIVE_UINT64; }

void quiet_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '/'))
    if (!part.empty()) parts.push_back(part);
  return parts;
}

Handle group_creation_plist() {
  Handle plist(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_link_creation_order(plist.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  return plist;
}

std::string join(const std::string& base, const std::string& name) {
  if (base.empty() || base == "/") return "/" + name;
  return base + "/" + name;
}

}  // namespace

std::string Group::where(const std::string& name) const { return file_ + ":" + join(path_, name); }

bool Group::has(const std::string& name) const {
  std::string prefix;
  for (const auto& part : split_path(name)) {
    prefix += (prefix.empty() ? "" : "/") + part;
    if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

bool Group::is_group(const std::string& name) const {
  if (!has(name)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name(id(), name.c_str(), &info, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

Group Group::group(const std::string& name) {
  hid_t current = id();
  Handle opened;
  std::string path = path_;
  for (const auto& part : split_path(name)) {
    path = join(path, part);
    hid_t next;
    if (H5Lexists(current, part.c_str(), H5P_DEFAULT) > 0) {
      next = H5Gopen2(current, part.c_str(), H5P_DEFAULT);
    } else {
      Handle plist = group_creation_plist();
      next = H5Gcreate2(current, part.c_str(), H5P_DEFAULT, plist.id(), H5P_DEFAULT);
    }
    MOE_CHECK(next >= 0) << file_ << ":" << path << ": cannot open or create group";
    opened = Handle(next, H5Gclose);
    current = next;
  }
  return Group(std::move(opened), file_, path);
}

Group Group::open_group(const std::string& name) const {
  MOE_CHECK(is_group(name)) << where(name) << ": no such group";
  hid_t g = H5Gopen2(id(), name.c_str(), H5P_DEFAULT);
  MOE_CHECK(g >= 0) << where(name) << ": cannot open group";
  return Group(Handle(g, H5Gclose), file_, join(path_, name));
}

std::vector<std::string> Group::children() const {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  hsize_t idx = 0;
  // Creation order where the group tracks it (ours do), name order otherwise.
  if (H5Literate(id(), H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, collect, &names) < 0) {
    names.clear();
    idx = 0;
    H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names);
  }
  return names;
}

// ---- attributes --------------------------------------------------------------

namespace {

void write_attr(hid_t obj, const std::string& name, hid_t type, hid_t space, const void* data,
                const std::string& where) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  Handle attr(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  MOE_CHECK(attr.valid()) << where << ": cannot create attribute '" << name << "'";
  MOE_CHECK(H5Awrite(attr.id(), type, data) >= 0) << where << ": cannot write attribute '" << name << "'";
}

template <typename T>
void write_vector_attr(hid_t obj, const std::string& name, const std::vector<T>& values, const std::string& where) {
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  write_attr(obj, name, native_type<T>(), space.id(), values.data(), where);
}

}  // namespace

void Group::set_attr(const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.id(), std::max<size_t>(value.size(), 1));
  H5Tset_strpad(type.id(), H5T_STR_NULLPAD);
  H5Tset_cset(type.id(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  write_attr(id(), name, type.id(), space.id(), padded.data(), where(""));
}

void Group::set_attr(const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attr(id(), name, H5T_NATIVE_INT64, space.id(), &value, where(""));
}

void Group::set_attr(const std::string& name, double value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  write_attr(id(), name, H5T_NATIVE_DOUBLE, space.id(), &value, where(""));
}

void Group::set_attr(const std::string& name, const std::vector<int64_t>& values) {
  write_vector_attr(id(), name, values, where(""));
}

void Group::set_attr(const std::string& name, const std::vector<double>& values) {
  write_vector_attr(id(), name, values, where(""));
}

bool Group::has_attr(const std::string& name) const { return H5Aexists(id(), name.c_str()) > 0; }

std::vector<std::string> Group::attr_names() const {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  hsize_t idx = 0;
  H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names);
  return names;
}

namespace {

struct OpenAttr {
  Handle attr, type, space;
  H5T_class_t cls;
  hssize_t count;
};

OpenAttr open_attr(hid_t obj, const std::string& name, const std::string& where) {
  MOE_CHECK(H5Aexists(obj, name.c_str()) > 0) << where << ": no attribute '" << name << "'";
  OpenAttr a;
  a.attr = Handle(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  MOE_CHECK(a.attr.valid()) << where << ": cannot open attribute '" << name << "'";
  a.type = Handle(H5Aget_type(a.attr.id()), H5Tclose);
  a.space = Handle(H5Aget_space(a.attr.id()), H5Sclose);
  a.cls = H5Tget_class(a.type.id());
  a.count = H5Sget_simple_extent_npoints(a.space.id());
  return a;
}

template <typename T>
std::vector<T> read_numeric_attr(const OpenAttr& a, const std::string& name, const std::string& where) {
  MOE_CHECK(a.cls == H5T_INTEGER || a.cls == H5T_FLOAT) << where << ": attribute '" << name << "' is not numeric";
  std::vector<T> values(std::max<hssize_t>(a.count, 0));
  if (!values.empty())
    MOE_CHECK(H5Aread(a.attr.id(), native_type<T>(), values.data()) >= 0)
        << where << ": cannot read attribute '" << name << "'";
  return values;
}

}  // namespace

std::string Group::attr_string(const std::string& name) const {
  OpenAttr a = open_attr(id(), name, where(""));
  MOE_CHECK(a.cls == H5T_STRING) << where("") << ": attribute '" << name << "' is not a string";
  if (H5Tis_variable_str(a.type.id()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.id(), H5T_VARIABLE);
    H5Tset_cset(mem.id(), H5Tget_cset(a.type.id()));
    char* text = nullptr;
    MOE_CHECK(H5Aread(a.attr.id(), mem.id(), &text) >= 0) << where("") << ": cannot read attribute '" << name << "'";
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(a.type.id());
  std::string buffer(size, '\0');
  MOE_CHECK(H5Aread(a.attr.id(), a.type.id(), buffer.data()) >= 0)
      << where("") << ": cannot read attribute '" << name << "'";
  buffer.resize(std::strlen(buffer.c_str()));
  return buffer;
}

double Group::attr_double(const std::string& name) const {
  auto values = read_numeric_attr<double>(open_attr(id(), name, where("")), name, where(""));
  MOE_CHECK(values.size() == 1) << where("") << ": attribute '" << name << "' is not a scalar";
  return values[0];
}

int64_t Group::attr_int(const std::string& name) const {
  auto values = read_numeric_attr<int64_t>(open_attr(id(), name, where("")), name, where(""));
  MOE_CHECK(values.size() == 1) << where("") << ": attribute '" << name << "' is not a scalar";
  return values[0];
}

std::string Group::attr_as_text(const std::string& name) const {
  OpenAttr a = open_attr(id(), name, where(""));
  if (a.cls == H5T_STRING) return attr_string(name);
  std::ostringstream out;
  auto print = [&](const auto& values) {
    const bool scalar = H5Sget_simple_extent_ndims(a.space.id()) == 0;
    if (!scalar) out << "[";
    for (size_t i = 0; i < values.size(); ++i) out << (i ? ", " : "") << values[i];
    if (!scalar) out << "]";
  };
  if (a.cls == H5T_INTEGER) {
    print(read_numeric_attr<int64_t>(a, name, where("")));
  } else if (a.cls == H5T_FLOAT) {
    print(read_numeric_attr<double>(a, name, where("")));
  } else {
    out << "<unsupported attribute type>";
  }
  return out.str();
}

// ---- datasets ----------------------------------------------------------------

template <typename T>
void Group::write(const std::string& name, const Shape& shape, const T* data) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  if (has(name)) H5Ldelete(id(), name.c_str(), H5P_DEFAULT);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle ds(H5Dcreate2(id(), name.c_str(), native_type<T>(), space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
  MOE_CHECK(ds.valid()) << where(name) << ": cannot create dataset";
  if (shape_numel(shape) > 0)
    MOE_CHECK(H5Dwrite(ds.id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0)
        << where(name) << ": cannot write dataset";
}

Shape Group::dataset_shape(const std::string& name) const {
  MOE_CHECK(has(name)) << where(name) << ": no such dataset";
  Handle ds(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), H5Dclose);
  MOE_CHECK(ds.valid()) << where(name) << ": not a dataset";
  Handle space(H5Dget_space(ds.id()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(std::max(rank, 0));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  return Shape(dims.begin(), dims.end());
}

std::string Group::dataset_type_name(const std::string& name) const {
  Handle ds(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), H5Dclose);
  MOE_CHECK(ds.valid()) << where(name) << ": not a dataset";
  Handle type(H5Dget_type(ds.id()), H5Tclose);
  const size_t bits = 8 * H5Tget_size(type.id());
  switch (H5Tget_class(type.id())) {
    case H5T_FLOAT: return "float" + std::to_string(bits);
    case H5T_INTEGER:
      return (H5Tget_sign(type.id()) == H5T_SGN_NONE ? "uint" : "int") + std::to_string(bits);
    case H5T_STRING: return "string";
    case H5T_COMPOUND: return "compound";
    default: return "other";
  }
}

template <typename T>
Tensor<T> Group::read(const std::string& name) const {
  Shape shape = dataset_shape(name);
  Handle ds(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), H5Dclose);
  Handle type(H5Dget_type(ds.id()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.id());
  MOE_CHECK(cls == H5T_FLOAT || cls == H5T_INTEGER)
      << where(name) << ": expected a numeric dataset, found " << dataset_type_name(name);
  Tensor<T> t(shape);
  if (t.numel() > 0)
    MOE_CHECK(H5Dread(ds.id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.ptr()) >= 0)
        << where(name) << ": cannot read dataset";
  return t;
}

template <typename T>
Series Group::series(const std::string& name, const Shape& inner_shape, int64_t chunk_rows) {
  const int64_t row_size = std::max<int64_t>(shape_numel(inner_shape), 1);
  if (has(name)) {
    // Reopen (e.g. a resumed run): keep what is there and append after it.
    Handle ds(H5Dopen2(id(), name.c_str(), H5P_DEFAULT), H5Dclose);
    MOE_CHECK(ds.valid()) << where(name) << ": not a dataset";
    Shape shape = dataset_shape(name);
    MOE_CHECK(!shape.empty() && Shape(shape.begin() + 1, shape.end()) == inner_shape)
        << where(name) << ": existing dataset has shape " << shape_str(shape) << ", expected [rows] + "
        << shape_str(inner_shape);
    return Series(std::move(ds), native_type<T>(), inner_shape, shape[0], where(name));
  }
  // Chunks of at most ~256K elements keep per-step flushes cheap.
  chunk_rows = std::clamp<int64_t>(262144 / row_size, 1, chunk_rows);
  std::vector<hsize_t> dims{0}, max_dims{H5S_UNLIMITED}, chunk{static_cast<hsize_t>(chunk_rows)};
  for (int64_t d : inner_shape) {
    dims.push_back(d);
    max_dims.push_back(d);
    chunk.push_back(d);
  }
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), max_dims.data()), H5Sclose);
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(dcpl.id(), static_cast<int>(chunk.size()), chunk.data());
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle ds(H5Dcreate2(id(), name.c_str(), native_type<T>(), space.id(), lcpl.id(), dcpl.id(), H5P_DEFAULT),
            H5Dclose);
  MOE_CHECK(ds.valid()) << where(name) << ": cannot create appendable dataset";
  return Series(std::move(ds), native_type<T>(), inner_shape, 0, where(name));
}

void Series::append(const void* row) {
  MOE_CHECK(valid()) << "append to a closed series";
  std::vector<hsize_t> new_dims{static_cast<hsize_t>(rows_ + 1)}, start{static_cast<hsize_t>(rows_)},
      count{1};
  for (int64_t d : inner_) {
    new_dims.push_back(d);
    start.push_back(0);
    count.push_back(d);
  }
  MOE_CHECK(H5Dset_extent(dataset_.id(), new_dims.data()) >= 0) << where_ << ": cannot extend dataset";
  Handle file_space(H5Dget_space(dataset_.id()), H5Sclose);
  H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Handle mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), H5Sclose);
  MOE_CHECK(H5Dwrite(dataset_.id(), type_, mem_space.id(), file_space.id(), H5P_DEFAULT, row) >= 0)
      << where_ << ": cannot append row " << rows_;
  ++rows_;
}

// ---- files -------------------------------------------------------------------

File File::create(const std::string& path, bool overwrite) {
  quiet_errors();
  const bool exists = std::filesystem::exists(path);
  MOE_CHECK(overwrite || !exists) << path << ": results file exists (pass --force to overwrite it)";
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  MOE_CHECK(parent.empty() || std::filesystem::is_directory(parent))
      << path << ": cannot create results file, directory " << parent.string() << " does not exist";
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  H5Pset_link_creation_order(fcpl.id(), H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
  Handle file(H5Fcreate(path.c_str(), overwrite ? H5F_ACC_TRUNC : H5F_ACC_EXCL, fcpl.id(), H5P_DEFAULT), H5Fclose);
  MOE_CHECK(file.valid()) << path << ": cannot create results file (permissions, or not a writable path)";
  Handle root(H5Gopen2(file.id(), "/", H5P_DEFAULT), H5Gclose);
  return File(std::move(file), std::move(root), path);
}

File File::open(const std::string& path, unsigned flags) {
  quiet_errors();
  MOE_CHECK(std::filesystem::exists(path)) << path << ": no such file";
  MOE_CHECK(H5Fis_hdf5(path.c_str()) > 0) << path << ": not an HDF5 file";
  Handle file(H5Fopen(path.c_str(), flags, H5P_DEFAULT), H5Fclose);
  MOE_CHECK(file.valid()) << path << ": cannot open HDF5 file" << (flags == H5F_ACC_RDWR ? " for writing" : "");
  Handle root(H5Gopen2(file.id(), "/", H5P_DEFAULT), H5Gclose);
  return File(std::move(file), std::move(root), path);
}

File File::open_read(const std::string& path) { return open(path, H5F_ACC_RDONLY); }
File File::open_write(const std::string& path) { return open(path, H5F_ACC_RDWR); }

void File::flush() { MOE_CHECK(H5Fflush(id(), H5F_SCOPE_GLOBAL) >= 0) << file_name() << ": cannot flush"; }

#define MOELAB_H5_INSTANTIATE(T)                                                   \
  template void Group::write<T>(const std::string&, const Shape&, const T*);      \
  template Tensor<T> Group::read<T>(const std::string&) const;                    \
  template Series Group::series<T>(const std::string&, const Shape&, int64_t);
MOELAB_H5_INSTANTIATE(float)
MOELAB_H5_INSTANTIATE(double)
MOELAB_H5_INSTANTIATE(int32_t)
MOELAB_H5_INSTANTIATE(int64_t)
MOELAB_H5_INSTANTIATE(uint8_t)
#undef MOELAB_H5_INSTANTIATE

}  // namespace moelab::h5
