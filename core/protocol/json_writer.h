// JsonWriter: appends compact JSON to a std::string, for every reply and event the core sends.
//
// The caller is responsible for structure (begin/end pairs, key before value inside objects);
// commas are inserted automatically. Strings are written byte for byte except the escapes
// JSON requires (quote, backslash, C0 controls), so valid UTF-8 stays exactly as it came in.
// raw() splices an already-encoded JSON value (an object serialized once and shared).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren {

class JsonWriter {
  public:
    JsonWriter() { out_.reserve(256); }

    JsonWriter& begin_object();
    JsonWriter& end_object();
    JsonWriter& begin_array();
    JsonWriter& end_array();
    JsonWriter& key(std::string_view k);
    JsonWriter& value(std::string_view s);
    JsonWriter& value(const char* s) { return value(std::string_view(s)); }
    JsonWriter& value(int64_t n);
    JsonWriter& value(bool b);
    JsonWriter& null();
    // The string, or null when absent.
    JsonWriter& value_or_null(const std::optional<std::string>& s);
    // The number, or null when it is 0 (ids and times where 0 means "none").
    JsonWriter& value_or_null(int64_t n);
    JsonWriter& raw(std::string_view json);

    // Finishes the line (appends '\n') and hands over the buffer.
    std::string take_line();
    // Hands over the buffer as it is (a value to splice elsewhere).
    std::string take() { return std::move(out_); }
    const std::string& str() const { return out_; }

  private:
    void separate();
    std::string out_;
    bool need_comma_ = false;
};

// Appends `s` as a JSON string literal (with quotes) to `out`.
void append_json_string(std::string& out, std::string_view s);

}  // namespace warren
