#include "services/gateway/domain/transcoder.h"

#include <google/protobuf/util/json_util.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/core/status.h"
#include "services/gateway/domain/json_printer.h"

namespace ptd::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsBlank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; });
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra;
    if (c < 0x80) {
      extra = 0;
    } else if ((c & 0xE0) == 0xC0 && c >= 0xC2) {
      extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
    } else if ((c & 0xF8) == 0xF0 && c <= 0xF4) {
      extra = 3;
    } else {
      return false;
    }
    if (i + extra >= s.size() && extra > 0) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string ParseErrorMessage(std::string_view what, const google::protobuf::util::Status& status) {
  std::string message(status.message().data(), status.message().size());
  return absl::StrCat(std::string(what), ": ", message);
}

// The JSON value a path variable or query parameter stands for, as the JSON parser accepts it for `field`.
absl::StatusOr<nlohmann::json> LeafValue(const FieldDescriptor* field, const std::string& name,
                                         const std::string& text) {
  auto as_bool = [&]() -> absl::StatusOr<nlohmann::json> {
    if (text == "true") return nlohmann::json(true);
    if (text == "false") return nlohmann::json(false);
    return InvalidField(name, absl::StrCat("must be true or false, got \"", text, "\""));
  };
  switch (field->type()) {
    case FieldDescriptor::TYPE_BOOL:
      return as_bool();
    case FieldDescriptor::TYPE_ENUM: {
      bool numeric = !text.empty() && std::all_of(text.begin() + (text[0] == '-' ? 1 : 0), text.end(),
                                                  [](char c) { return c >= '0' && c <= '9'; });
      if (numeric && text.size() < 10) return nlohmann::json(std::stoi(text));
      return nlohmann::json(text);
    }
    case FieldDescriptor::TYPE_MESSAGE: {
      const Descriptor* d = field->message_type();
      if (d->full_name() == "google.protobuf.BoolValue") return as_bool();
      static const char* kScalarLike[] = {
          "google.protobuf.Timestamp",   "google.protobuf.Duration",    "google.protobuf.FieldMask",
          "google.protobuf.StringValue", "google.protobuf.BytesValue",  "google.protobuf.Int32Value",
          "google.protobuf.Int64Value",  "google.protobuf.UInt32Value", "google.protobuf.UInt64Value",
          "google.protobuf.FloatValue",  "google.protobuf.DoubleValue"};
      for (const char* n : kScalarLike) {
        if (d->full_name() == n) return nlohmann::json(text);
      }
      return InvalidField(name, absl::StrCat("is a message (", d->full_name(), "): name one of its fields, e.g. ", name,
                                             ".", d->field_count() > 0 ? d->field(0)->name() : "field"));
    }
    default:
      return nlohmann::json(text);
  }
}

// Sets `value` at `path` inside `root` (a JSON object), appending for a repeated leaf.
absl::Status Place(nlohmann::json& root, const FieldPath& path, const std::string& name, nlohmann::json value) {
  nlohmann::json* node = &root;
  for (size_t i = 0; i + 1 < path.size(); ++i) node = &(*node)[path[i]->name()];
  const FieldDescriptor* leaf = path.back();
  nlohmann::json& slot = (*node)[leaf->name()];
  if (leaf->is_repeated()) {
    slot.push_back(std::move(value));
  } else {
    if (!slot.is_null()) return InvalidField(name, "is given more than once");
    slot = std::move(value);
  }
  return absl::OkStatus();
}

bool SamePrefix(const FieldPath& a, const FieldPath& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// A singular string field reached through singular messages: set directly (the common path variable).
bool SetStringDirectly(Message* request, const FieldPath& path, const std::string& value) {
  const FieldDescriptor* leaf = path.back();
  if (leaf->type() != FieldDescriptor::TYPE_STRING || leaf->is_repeated()) return false;
  Message* m = request;
  for (size_t i = 0; i + 1 < path.size(); ++i) m = m->GetReflection()->MutableMessage(m, path[i]);
  m->GetReflection()->SetString(m, leaf, value);
  return true;
}

}  // namespace

int JsonDepth(std::string_view json, int limit) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return deepest;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t start = 0;
  while (start < query.size()) {
    size_t amp = query.find('&', start);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(start, amp - start);
    start = amp + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::optional<std::string> name = PercentDecode(pair.substr(0, eq), false, true);
    std::optional<std::string> value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), false, true);
    if (!name || !value) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed %-escape in the query string near \"", std::string(pair), "\""));
    }
    out.emplace_back(*std::move(name), *std::move(value));
  }
  return out;
}

absl::Status BuildRequest(const RouteTable::Match& match, std::string_view query, std::string_view body,
                          const TranscodeOptions& options, Message* request) {
  const Route& route = *match.route;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;

  // The body.
  if (!route.has_body()) {
    if (!IsBlank(body)) {
      return absl::InvalidArgumentError(
          absl::StrCat(route.label(), " takes no body; send the fields as query parameters"));
    }
  } else if (!IsBlank(body)) {
    if (int depth = JsonDepth(body, options.max_json_depth); depth > options.max_json_depth) {
      return absl::InvalidArgumentError(
          absl::StrCat("the JSON body nests deeper than ", options.max_json_depth, " levels"));
    }
    if (!IsValidUtf8(body)) return absl::InvalidArgumentError("the JSON body is not valid UTF-8");
    google::protobuf::util::Status parsed;
    if (route.body_is_whole) {
      parsed = google::protobuf::util::JsonStringToMessage(body, request, parse);
    } else {
      // The body is the value of one field: parse {"field": <body>}, which handles every field type alike.
      std::string wrapped = absl::StrCat("{\"", route.body_field[0]->name(), "\":", std::string(body), "}");
      parsed = google::protobuf::util::JsonStringToMessage(wrapped, request, parse);
    }
    if (!parsed.ok()) return absl::InvalidArgumentError(ParseErrorMessage("invalid JSON body", parsed));
  }

  // Path variables and query parameters: strings directly, everything else through the JSON parser so that
  // the JSON mapping's rules for enums, 64-bit integers, Timestamps ... apply to them too.
  nlohmann::json overlay = nlohmann::json::object();
  for (size_t i = 0; i < route.variables.size(); ++i) {
    const FieldPath& path = route.variables[i];
    const std::string& value = match.values[i];
    std::string name = FieldPathName(path);
    if (!IsValidUtf8(value)) return InvalidField(name, "is not valid UTF-8");
    if (SetStringDirectly(request, path, value)) continue;
    absl::StatusOr<nlohmann::json> leaf = LeafValue(path.back(), name, value);
    if (!leaf.ok()) return leaf.status();
    if (absl::Status s = Place(overlay, path, name, *std::move(leaf)); !s.ok()) return s;
  }
  if (!query.empty()) {
    absl::StatusOr<std::vector<std::pair<std::string, std::string>>> params = ParseQuery(query);
    if (!params.ok()) return params.status();
    for (const auto& [name, value] : *params) {
      if (route.body_is_whole) {
        return InvalidField(name, "query parameters are not accepted here: the body carries the whole request");
      }
      absl::StatusOr<FieldPath> path = ResolveFieldPath(request->GetDescriptor(), name);
      if (!path.ok()) return InvalidField(name, absl::StrCat("no such query parameter: ", path.status().message()));
      if (!route.body_field.empty() && SamePrefix(*path, route.body_field)) {
        return InvalidField(name, "is carried by the body");
      }
      for (const FieldPath& var : route.variables) {
        if (SamePrefix(*path, var)) return InvalidField(name, "is carried by the path");
      }
      if (path->back()->is_map()) return InvalidField(name, "is a map: send it in a body");
      if (!IsValidUtf8(value)) return InvalidField(name, "is not valid UTF-8");
      absl::StatusOr<nlohmann::json> leaf = LeafValue(path->back(), name, value);
      if (!leaf.ok()) return leaf.status();
      if (absl::Status s = Place(overlay, *path, name, *std::move(leaf)); !s.ok()) return s;
    }
  }
  if (!overlay.empty()) {
    std::unique_ptr<Message> extra(request->New());
    google::protobuf::util::Status parsed =
        google::protobuf::util::JsonStringToMessage(overlay.dump(), extra.get(), parse);
    if (!parsed.ok()) return absl::InvalidArgumentError(ParseErrorMessage("invalid path or query parameter", parsed));
    request->MergeFrom(*extra);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RenderResponse(const Route& route, const Message& response,
                                           const TranscodeOptions& options) {
  google::protobuf::util::JsonPrintOptions print;
  print.always_print_primitive_fields = options.emit_defaults;
  print.preserve_proto_field_names = false;
  print.always_print_enums_as_ints = false;
  const Message* target = &response;
  if (!route.response_field.empty() && route.response_field[0]->type() == FieldDescriptor::TYPE_MESSAGE &&
      !route.response_field[0]->is_repeated()) {
    target = &response.GetReflection()->GetMessage(response, route.response_field[0]);
  }
  std::string out;
  // The direct printer gives the library's bytes at a fraction of its cost; what it declines, the library prints.
  if (options.emit_defaults && PrintJsonWithDefaults(*target, &out)) return out;
  out.clear();
  google::protobuf::util::Status printed = google::protobuf::util::MessageToJsonString(*target, &out, print);
  if (!printed.ok()) return absl::InternalError(ParseErrorMessage("cannot print the response as JSON", printed));
  return out;
}

}  // namespace ptd::gateway
