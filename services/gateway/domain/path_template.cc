#include "services/gateway/domain/path_template.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ptd::gateway {
namespace {

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool IsFieldPath(std::string_view path) {
  if (path.empty() || path.front() == '.' || path.back() == '.') return false;
  char previous = '.';
  for (char c : path) {
    if (c == '.' ? previous == '.' : !IsIdentChar(c)) return false;
    previous = c;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> SplitSegments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

}  // namespace

std::optional<std::string> PercentDecode(std::string_view text, bool keep_slash, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = HexValue(text[i + 1]);
      int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char decoded = static_cast<char>(hi * 16 + lo);
      if (keep_slash && decoded == '/') {
        out.append(text.substr(i, 3));
      } else {
        out.push_back(decoded);
      }
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

absl::StatusOr<PathTemplate> PathTemplate::Parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("path template \"", std::string(text), "\": ", std::string(why)));
  };
  if (text.empty() || text.front() != '/') return bad("must start with '/'");
  PathTemplate t;
  t.text_ = std::string(text);
  std::string_view rest = text.substr(1);
  // The verb: a ':' after the last '/' and outside braces.
  size_t last_slash = rest.rfind('/');
  size_t last_brace = rest.rfind('}');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (last_slash == std::string_view::npos || colon > last_slash) &&
      (last_brace == std::string_view::npos || colon > last_brace)) {
    t.verb_ = std::string(rest.substr(colon + 1));
    if (t.verb_.empty()) return bad("empty verb after ':'");
    rest = rest.substr(0, colon);
  }
  size_t i = 0;
  auto parse_plain = [&](std::string_view seg) -> absl::Status {
    if (seg.empty()) return bad("empty segment");
    if (seg == "*") {
      t.segments_.push_back({Kind::kSingle, ""});
    } else if (seg == "**") {
      t.segments_.push_back({Kind::kMulti, ""});
    } else {
      if (seg.find_first_of("{}*=") != std::string_view::npos)
        return bad(absl::StrCat("bad segment \"", std::string(seg), "\""));
      t.segments_.push_back({Kind::kLiteral, std::string(seg)});
    }
    return absl::OkStatus();
  };
  while (i <= rest.size()) {
    if (i < rest.size() && rest[i] == '{') {
      size_t close = rest.find('}', i);
      if (close == std::string_view::npos) return bad("unclosed '{'");
      std::string_view inside = rest.substr(i + 1, close - i - 1);
      size_t eq = inside.find('=');
      Variable v;
      v.field_path = std::string(inside.substr(0, eq));
      if (!IsFieldPath(v.field_path)) return bad(absl::StrCat("bad field path \"", v.field_path, "\""));
      v.first_segment = static_cast<int>(t.segments_.size());
      if (eq == std::string_view::npos) {
        t.segments_.push_back({Kind::kSingle, ""});
      } else {
        std::string_view sub = inside.substr(eq + 1);
        if (sub.empty()) return bad("empty variable pattern");
        for (std::string_view seg : SplitSegments(sub)) {
          if (absl::Status s = parse_plain(seg); !s.ok()) return s;
        }
      }
      v.end_segment = static_cast<int>(t.segments_.size());
      for (const Variable& other : t.variables_) {
        if (other.field_path == v.field_path) return bad(absl::StrCat("variable ", v.field_path, " appears twice"));
      }
      t.variables_.push_back(std::move(v));
      i = close + 1;
      if (i < rest.size() && rest[i] != '/') return bad("a variable must end its segment");
      ++i;
    } else {
      size_t slash = rest.find('/', i);
      if (slash == std::string_view::npos) slash = rest.size();
      if (absl::Status s = parse_plain(rest.substr(i, slash - i)); !s.ok()) return s;
      i = slash + 1;
    }
  }
  for (size_t k = 0; k + 1 < t.segments_.size(); ++k) {
    if (t.segments_[k].kind == Kind::kMulti) return bad("'**' must be the last segment");
  }
  return t;
}

std::optional<std::vector<std::string>> PathTemplate::Match(std::string_view path) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  path.remove_prefix(1);
  if (!verb_.empty()) {
    if (path.size() <= verb_.size() + 1 || path.substr(path.size() - verb_.size() - 1) != absl::StrCat(":", verb_)) {
      return std::nullopt;
    }
    path.remove_suffix(verb_.size() + 1);
  }
  std::vector<std::string_view> parts = SplitSegments(path);
  const bool ends_multi = !segments_.empty() && segments_.back().kind == Kind::kMulti;
  const size_t fixed = ends_multi ? segments_.size() - 1 : segments_.size();
  // "**" may also match nothing: "/v1/files" against "/v1/files/{path=**}".
  if (ends_multi ? parts.size() < fixed : parts.size() != fixed) return std::nullopt;
  for (size_t k = 0; k < fixed; ++k) {
    const Segment& seg = segments_[k];
    if (seg.kind == Kind::kLiteral ? parts[k] != seg.literal : parts[k].empty()) return std::nullopt;
  }
  std::vector<std::string> values;
  values.reserve(variables_.size());
  for (const Variable& v : variables_) {
    bool multi = v.end_segment > 0 && segments_[v.end_segment - 1].kind == Kind::kMulti;
    size_t end = multi ? parts.size() : static_cast<size_t>(v.end_segment);
    std::string raw;
    for (size_t k = v.first_segment; k < end && k < parts.size(); ++k) {
      if (k > static_cast<size_t>(v.first_segment)) raw.push_back('/');
      raw.append(parts[k]);
    }
    bool several = multi || v.end_segment - v.first_segment > 1;
    std::optional<std::string> decoded = PercentDecode(raw, /*keep_slash=*/several);
    if (!decoded) return std::nullopt;
    values.push_back(*std::move(decoded));
  }
  return values;
}

int PathTemplate::CompareSpecificity(const PathTemplate& other) const {
  size_t n = std::min(segments_.size(), other.segments_.size());
  for (size_t k = 0; k < n; ++k) {
    int a = static_cast<int>(segments_[k].kind);
    int b = static_cast<int>(other.segments_[k].kind);
    if (a != b) return a - b;
  }
  if (segments_.size() != other.segments_.size()) return segments_.size() > other.segments_.size() ? -1 : 1;
  if (verb_.empty() != other.verb_.empty()) return verb_.empty() ? 1 : -1;
  return 0;
}

std::string PathTemplate::OpenApiPath() const {
  std::string out;
  size_t k = 0;
  size_t next_var = 0;
  while (k < segments_.size()) {
    out.push_back('/');
    if (next_var < variables_.size() && static_cast<size_t>(variables_[next_var].first_segment) == k) {
      absl::StrAppend(&out, "{", variables_[next_var].field_path, "}");
      k = variables_[next_var].end_segment;
      ++next_var;
      continue;
    }
    const Segment& seg = segments_[k];
    out.append(seg.kind == Kind::kLiteral ? seg.literal : seg.kind == Kind::kSingle ? "*" : "**");
    ++k;
  }
  if (!verb_.empty()) absl::StrAppend(&out, ":", verb_);
  return out;
}

}  // namespace ptd::gateway
