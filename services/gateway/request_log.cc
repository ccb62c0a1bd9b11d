#include "services/gateway/request_log.h"

#include <charconv>

#include "absl/time/clock.h"
#include "libs/core/log.h"

namespace ptd::gateway {
namespace {

// Appends `text` as a JSON string; bytes that are not UTF-8 become U+FFFD, as libs/core/log does.
void AppendJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xf]);
      }
      ++i;
      continue;
    }
    size_t length = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    bool valid = length > 0 && i + length <= text.size();
    uint32_t cp = length == 2 ? c & 0x1f : length == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; valid && k < length; ++k) {
      unsigned char next = static_cast<unsigned char>(text[i + k]);
      valid = (next & 0xc0) == 0x80;
      cp = (cp << 6) | (next & 0x3f);
    }
    valid = valid && !(length == 3 && cp < 0x800) && !(length == 4 && (cp < 0x10000 || cp > 0x10ffff)) &&
            !(cp >= 0xd800 && cp <= 0xdfff);
    if (valid) {
      out.append(text.data() + i, length);
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  out.push_back('"');
}

void AppendField(std::string_view name, std::string_view value, std::string& out) {
  out.push_back(',');
  AppendJsonString(name, out);
  out.push_back(':');
  AppendJsonString(value, out);
}

}  // namespace

std::string RequestLog::Format(const Entry& e, absl::Time now) {
  std::string line;
  line.reserve(512);
  line += "{\"ts\":\"";
  line += absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", now, absl::UTCTimeZone());
  line += e.warn ? "\",\"level\":\"warn\"" : "\",\"level\":\"info\"";
  line += ",\"service\":\"gateway\"";
  if (!e.request_id.empty()) AppendField("request_id", e.request_id, line);
  line += ",\"msg\":\"http request\"";
  // The fields in name order, as libs/core/log writes them.
  char number[32];
  auto [end, ec] = std::to_chars(number, number + sizeof(number), e.duration_ms, std::chars_format::fixed, 3);
  line += ",\"duration_ms\":";
  line.append(number, end);
  if (!e.grpc_code.empty()) AppendField("grpc_code", e.grpc_code, line);
  if (e.messages >= 0) {
    line += ",\"messages\":";
    line += std::to_string(e.messages);
  }
  AppendField("method", e.method, line);
  AppendField("path", e.path, line);
  AppendField("remote", e.remote, line);
  AppendField("route", e.route, line);
  line += ",\"status\":";
  line += std::to_string(e.status);
  if (e.subject != nullptr) AppendField("subject", *e.subject, line);
  if (e.tenant != nullptr) AppendField("tenant", *e.tenant, line);
  line.push_back('}');
  return line;
}

void RequestLog::Add(const Entry& entry) {
  log::WriteFormatted(entry.warn ? log::Level::kWarn : log::Level::kInfo, Format(entry, absl::Now()));
}

}  // namespace ptd::gateway
