#include "services/gateway/domain/json_printer.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/stubs/strutil.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/escaping.h"

namespace ptd::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

enum class Shape { kObject, kTimestamp, kDuration, kWrapper, kDeclined };

Shape ShapeOf(const Descriptor* type) {
  const std::string& name = type->full_name();
  if (name.rfind("google.protobuf.", 0) == 0) {
    if (name == "google.protobuf.Timestamp") return Shape::kTimestamp;
    if (name == "google.protobuf.Duration") return Shape::kDuration;
    if (name == "google.protobuf.DoubleValue" || name == "google.protobuf.FloatValue" ||
        name == "google.protobuf.Int64Value" || name == "google.protobuf.UInt64Value" ||
        name == "google.protobuf.Int32Value" || name == "google.protobuf.UInt32Value" ||
        name == "google.protobuf.BoolValue" || name == "google.protobuf.StringValue" ||
        name == "google.protobuf.BytesValue") {
      return Shape::kWrapper;
    }
    if (name == "google.protobuf.Any" || name == "google.protobuf.Struct" || name == "google.protobuf.Value" ||
        name == "google.protobuf.ListValue" || name == "google.protobuf.FieldMask") {
      return Shape::kDeclined;
    }
  }
  if (type->file()->syntax() != google::protobuf::FileDescriptor::SYNTAX_PROTO3) return Shape::kDeclined;
  return Shape::kObject;
}

// Whether every type reachable from `type` has a shape this printer handles. `visiting` breaks cycles
// (a recursive type is handled when its other fields are).
bool HandlesUncached(const Descriptor* type, std::unordered_set<const Descriptor*>& visiting) {
  if (!visiting.insert(type).second) return true;
  Shape shape = ShapeOf(type);
  if (shape == Shape::kDeclined) return false;
  if (shape != Shape::kObject) return true;
  for (int i = 0; i < type->field_count(); ++i) {
    const FieldDescriptor* field = type->field(i);
    if (field->is_map()) return false;
    if (field->type() == FieldDescriptor::TYPE_ENUM && field->enum_type()->full_name() == "google.protobuf.NullValue") {
      return false;
    }
    if (field->type() == FieldDescriptor::TYPE_GROUP) return false;
    if (field->type() == FieldDescriptor::TYPE_MESSAGE && !HandlesUncached(field->message_type(), visiting)) {
      return false;
    }
  }
  return true;
}

// The characters the library escapes: C0 and C1 controls, DEL, '"', '\\', '<', '>' and a few invisible or
// direction-changing code points (JavaScript safety), in lowercase \uXXXX except for \b \t \n \f \r.
bool NeedsEscape(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return true;
  switch (cp) {
    case '"':
    case '\\':
    case '<':
    case '>':
    case 0xfeff:
    case 0xfff9:
    case 0xfffa:
    case 0xfffb:
    case 0x00ad:
    case 0x06dd:
    case 0x070f:
    case 0x17b4:
    case 0x17b5:
      return true;
    default:
      break;
  }
  return (cp >= 0x0600 && cp <= 0x0603) || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
         (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x206a && cp <= 0x206f) || cp == 0xe0001 ||
         (cp >= 0x1d173 && cp <= 0x1d17a) || (cp >= 0xe0020 && cp <= 0xe007f);
}

constexpr char kHex[] = "0123456789abcdef";

void AppendU16(uint32_t unit, std::string& out) {
  char buffer[6] = {
      '\\', 'u', kHex[(unit >> 12) & 0xf], kHex[(unit >> 8) & 0xf], kHex[(unit >> 4) & 0xf], kHex[unit & 0xf]};
  out.append(buffer, 6);
}

void AppendEscaped(uint32_t cp, std::string& out) {
  switch (cp) {
    case '\b':
      out += "\\b";
      return;
    case '\t':
      out += "\\t";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\r':
      out += "\\r";
      return;
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    default:
      break;
  }
  if (cp >= 0x10000) {
    AppendU16(0xd800 + ((cp - 0x10000) >> 10), out);
    AppendU16(0xdc00 + ((cp - 0x10000) & 0x3ff), out);
  } else {
    AppendU16(cp, out);
  }
}

// Appends `text` as a JSON string. False when it is not well-formed UTF-8 (the library drops such bytes
// silently; we leave that case to it).
bool AppendString(std::string_view text, std::string& out) {
  out.push_back('"');
  size_t plain_from = 0;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '<' && c != '>') {
      ++i;
      continue;
    }
    uint32_t cp;
    size_t length;
    if (c < 0x80) {
      cp = c;
      length = 1;
    } else {
      if (c >= 0xc2 && c <= 0xdf) {
        cp = c & 0x1f;
        length = 2;
      } else if (c >= 0xe0 && c <= 0xef) {
        cp = c & 0x0f;
        length = 3;
      } else if (c >= 0xf0 && c <= 0xf4) {
        cp = c & 0x07;
        length = 4;
      } else {
        return false;
      }
      if (i + length > text.size()) return false;
      for (size_t k = 1; k < length; ++k) {
        unsigned char next = static_cast<unsigned char>(text[i + k]);
        if ((next & 0xc0) != 0x80) return false;
        cp = (cp << 6) | (next & 0x3f);
      }
      // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
      if ((length == 3 && cp < 0x800) || (length == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
          (cp >= 0xd800 && cp <= 0xdfff)) {
        return false;
      }
    }
    if (NeedsEscape(cp)) {
      out.append(text.data() + plain_from, i - plain_from);
      AppendEscaped(cp, out);
      plain_from = i + length;
    }
    i += length;
  }
  out.append(text.data() + plain_from, text.size() - plain_from);
  out.push_back('"');
  return true;
}

template <typename Int>
void AppendInt(Int value, std::string& out, bool quoted) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (quoted) out.push_back('"');
  out.append(buffer, end);
  if (quoted) out.push_back('"');
}

void AppendDouble(double value, std::string& out) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    out += google::protobuf::SimpleDtoa(value);
  }
}

void AppendFloat(float value, std::string& out) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    out += google::protobuf::SimpleFtoa(value);
  }
}

void AppendDigits(int64_t value, int width, std::string& out) {
  char buffer[24];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  for (int pad = width - static_cast<int>(end - buffer); pad > 0; --pad) out.push_back('0');
  out.append(buffer, end);
}

// ".5" style fractions as the library prints them: none, or 3, 6 or 9 digits.
void AppendNanos(int32_t nanos, std::string& out) {
  if (nanos == 0) return;
  out.push_back('.');
  if (nanos % 1000000 == 0) {
    AppendDigits(nanos / 1000000, 3, out);
  } else if (nanos % 1000 == 0) {
    AppendDigits(nanos / 1000, 6, out);
  } else {
    AppendDigits(nanos, 9, out);
  }
}

constexpr int64_t kTimestampMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kTimestampMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kDurationMaxSeconds = 315576000000;   // 10000 years

// RFC 3339 in UTC. False when out of the range the library accepts.
bool AppendTimestamp(int64_t seconds, int32_t nanos, std::string& out) {
  if (seconds < kTimestampMinSeconds || seconds > kTimestampMaxSeconds || nanos < 0 || nanos > 999999999) {
    return false;
  }
  int64_t days = seconds / 86400;
  int64_t in_day = seconds % 86400;
  if (in_day < 0) {
    in_day += 86400;
    --days;
  }
  // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  out.push_back('"');
  AppendDigits(year, 4, out);
  out.push_back('-');
  AppendDigits(month, 2, out);
  out.push_back('-');
  AppendDigits(day, 2, out);
  out.push_back('T');
  AppendDigits(in_day / 3600, 2, out);
  out.push_back(':');
  AppendDigits(in_day / 60 % 60, 2, out);
  out.push_back(':');
  AppendDigits(in_day % 60, 2, out);
  AppendNanos(nanos, out);
  out += "Z\"";
  return true;
}

// "1.5s", "-0.250s". False when out of range or when the signs of seconds and nanos differ.
bool AppendDuration(int64_t seconds, int32_t nanos, std::string& out) {
  if (seconds < -kDurationMaxSeconds || seconds > kDurationMaxSeconds || nanos < -999999999 || nanos > 999999999 ||
      (seconds < 0 && nanos > 0) || (seconds > 0 && nanos < 0)) {
    return false;
  }
  out.push_back('"');
  if (seconds < 0 || nanos < 0) out.push_back('-');
  AppendInt(seconds < 0 ? -seconds : seconds, out, false);
  AppendNanos(nanos < 0 ? -nanos : nanos, out);
  out += "s\"";
  return true;
}

class Printer {
 public:
  explicit Printer(std::string& out) : out_(out) {}

  bool Value(const Message& message) {
    const Descriptor* type = message.GetDescriptor();
    const Reflection* reflection = message.GetReflection();
    switch (ShapeOf(type)) {
      case Shape::kDeclined:
        return false;
      case Shape::kTimestamp:
      case Shape::kDuration: {
        const FieldDescriptor* seconds = type->FindFieldByNumber(1);
        const FieldDescriptor* nanos = type->FindFieldByNumber(2);
        if (seconds == nullptr || nanos == nullptr) return false;
        int64_t s = reflection->GetInt64(message, seconds);
        int32_t n = reflection->GetInt32(message, nanos);
        return ShapeOf(type) == Shape::kTimestamp ? AppendTimestamp(s, n, out_) : AppendDuration(s, n, out_);
      }
      case Shape::kWrapper: {
        const FieldDescriptor* value = type->FindFieldByNumber(1);
        return value != nullptr && Scalar(message, reflection, value, -1);
      }
      case Shape::kObject:
        break;
    }
    // The library's field order: every field in declaration order, except that fields it renders as plain
    // values but could not place among them (members of oneofs and proto3 optionals, and message fields
    // printed as a string or number: Timestamps, Durations, wrappers) come after the rest, in field-number
    // order. Its tree of defaults only has slots for non-oneof scalars and for objects.
    out_.push_back('{');
    bool first = true;
    const FieldDescriptor* deferred[16];
    size_t deferred_count = 0;
    bool overflow = false;
    for (int i = 0; i < type->field_count(); ++i) {
      const FieldDescriptor* field = type->field(i);
      if (field->is_map()) return false;
      if (!field->is_repeated()) {
        const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
        if ((is_message || field->containing_oneof() != nullptr) && !reflection->HasField(message, field)) {
          continue;  // an absent message, or an absent member of a oneof (or a proto3 optional)
        }
        const bool printed_as_value =
            is_message ? ShapeOf(field->message_type()) != Shape::kObject : field->containing_oneof() != nullptr;
        if (printed_as_value) {
          if (deferred_count == std::size(deferred)) {
            overflow = true;
          } else {
            deferred[deferred_count++] = field;
          }
          continue;
        }
      }
      if (!Field(message, reflection, field, first)) return false;
    }
    if (overflow) return false;
    std::sort(deferred, deferred + deferred_count,
              [](const FieldDescriptor* a, const FieldDescriptor* b) { return a->number() < b->number(); });
    for (size_t i = 0; i < deferred_count; ++i) {
      if (!Field(message, reflection, deferred[i], first)) return false;
    }
    out_.push_back('}');
    return true;
  }

 private:
  // "name":value, after a comma unless it is the first.
  bool Field(const Message& message, const Reflection* reflection, const FieldDescriptor* field, bool& first) {
    if (!first) out_.push_back(',');
    first = false;
    if (!AppendString(field->json_name(), out_)) return false;
    out_.push_back(':');
    if (!field->is_repeated()) return Element(message, reflection, field, -1);
    out_.push_back('[');
    int size = reflection->FieldSize(message, field);
    for (int k = 0; k < size; ++k) {
      if (k > 0) out_.push_back(',');
      if (!Element(message, reflection, field, k)) return false;
    }
    out_.push_back(']');
    return true;
  }

  // One value of `field`: its element `index`, or the singular value when index < 0.
  bool Element(const Message& message, const Reflection* reflection, const FieldDescriptor* field, int index) {
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      return Value(index < 0 ? reflection->GetMessage(message, field)
                             : reflection->GetRepeatedMessage(message, field, index));
    }
    return Scalar(message, reflection, field, index);
  }

  bool Scalar(const Message& message, const Reflection* r, const FieldDescriptor* field, int index) {
    const bool one = index < 0;
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        AppendInt(one ? r->GetInt32(message, field) : r->GetRepeatedInt32(message, field, index), out_, false);
        return true;
      case FieldDescriptor::CPPTYPE_UINT32:
        AppendInt(one ? r->GetUInt32(message, field) : r->GetRepeatedUInt32(message, field, index), out_, false);
        return true;
      case FieldDescriptor::CPPTYPE_INT64:
        AppendInt(one ? r->GetInt64(message, field) : r->GetRepeatedInt64(message, field, index), out_, true);
        return true;
      case FieldDescriptor::CPPTYPE_UINT64:
        AppendInt(one ? r->GetUInt64(message, field) : r->GetRepeatedUInt64(message, field, index), out_, true);
        return true;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        AppendDouble(one ? r->GetDouble(message, field) : r->GetRepeatedDouble(message, field, index), out_);
        return true;
      case FieldDescriptor::CPPTYPE_FLOAT:
        AppendFloat(one ? r->GetFloat(message, field) : r->GetRepeatedFloat(message, field, index), out_);
        return true;
      case FieldDescriptor::CPPTYPE_BOOL:
        out_ += (one ? r->GetBool(message, field) : r->GetRepeatedBool(message, field, index)) ? "true" : "false";
        return true;
      case FieldDescriptor::CPPTYPE_ENUM: {
        int number = one ? r->GetEnumValue(message, field) : r->GetRepeatedEnumValue(message, field, index);
        if (const auto* value = field->enum_type()->FindValueByNumber(number)) {
          return AppendString(value->name(), out_);
        }
        AppendInt(number, out_, false);  // a value this build does not know: its number
        return true;
      }
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& text = one ? r->GetStringReference(message, field, &scratch)
                                      : r->GetRepeatedStringReference(message, field, index, &scratch);
        if (field->type() == FieldDescriptor::TYPE_BYTES) {
          out_.push_back('"');
          out_ += absl::Base64Escape(text);
          out_.push_back('"');
          return true;
        }
        return AppendString(text, out_);
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        break;
    }
    return false;
  }

  std::string& out_;
};

}  // namespace

bool JsonPrinterHandles(const Descriptor* type) {
  // Descriptors live as long as their pool, which outlives the messages printed.
  thread_local std::unordered_map<const Descriptor*, bool> cache;
  auto it = cache.find(type);
  if (it != cache.end()) return it->second;
  std::unordered_set<const Descriptor*> visiting;
  return cache[type] = HandlesUncached(type, visiting);
}

bool PrintJsonWithDefaults(const Message& message, std::string* out) {
  if (!JsonPrinterHandles(message.GetDescriptor())) return false;
  return Printer(*out).Value(message);
}

}  // namespace ptd::gateway
