// Status and Result<T>: operating errors as values on the data path.
// Programmer errors use TALLY_ASSERT instead.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "host/common/assert.h"

namespace tally {

enum class Code : unsigned char {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kOutOfRange,
  kResourceExhausted,  // a bound was hit: memory, queue, buffer
  kUnavailable,        // a device, peer or backend is absent or failed
  kIoError,
  kCorruption,
  kInternal,
  kUnimplemented,
};

const char* code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status exhausted(std::string m) { return {Code::kResourceExhausted, std::move(m)}; }
  static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIoError, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }
  static Status unimplemented(std::string m) { return {Code::kUnimplemented, std::move(m)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T>: a value or a non-ok Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(implicit)
  Result(Status status) : status_(std::move(status)) { TALLY_ASSERT(!status_.is_ok()); }  // NOLINT

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { TALLY_ASSERT(value_.has_value()); return *value_; }
  const T& value() const& { TALLY_ASSERT(value_.has_value()); return *value_; }
  T&& value() && { TALLY_ASSERT(value_.has_value()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace tally

#define TALLY_RETURN_IF_ERROR(expr)        \
  do {                                     \
    ::tally::Status _st = (expr);          \
    if (!_st.is_ok()) return _st;          \
  } while (0)
