#include "services/gateway/domain/route_table.h"

#include <google/protobuf/descriptor_database.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/api/annotations.pb.h"
#include "ptd/gateway/v1/annotations.pb.h"

namespace ptd::gateway {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;

const FieldDescriptor* FindField(const Descriptor* message, std::string_view name) {
  std::string key(name);
  if (const FieldDescriptor* f = message->FindFieldByName(key)) return f;
  for (int i = 0; i < message->field_count(); ++i) {
    if (message->field(i)->json_name() == key) return message->field(i);
  }
  return nullptr;
}

// The HTTP method and template of one rule; false when the rule names none.
bool MethodAndPattern(const google::api::HttpRule& rule, std::string* method, std::string* pattern) {
  switch (rule.pattern_case()) {
    case google::api::HttpRule::kGet:
      *method = "GET";
      *pattern = rule.get();
      return true;
    case google::api::HttpRule::kPut:
      *method = "PUT";
      *pattern = rule.put();
      return true;
    case google::api::HttpRule::kPost:
      *method = "POST";
      *pattern = rule.post();
      return true;
    case google::api::HttpRule::kDelete:
      *method = "DELETE";
      *pattern = rule.delete_();
      return true;
    case google::api::HttpRule::kPatch:
      *method = "PATCH";
      *pattern = rule.patch();
      return true;
    case google::api::HttpRule::kCustom:
      *method = rule.custom().kind();
      *pattern = rule.custom().path();
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::unique_ptr<Route>> MakeRoute(const MethodDescriptor* method, const google::api::HttpRule& rule) {
  auto route = std::make_unique<Route>();
  std::string pattern;
  if (!MethodAndPattern(rule, &route->http_method, &pattern)) {
    return absl::InvalidArgumentError("the rule names no HTTP method and path");
  }
  absl::StatusOr<PathTemplate> path = PathTemplate::Parse(pattern);
  if (!path.ok()) return path.status();
  route->path = *std::move(path);
  route->method = method;
  route->grpc_path = absl::StrCat("/", method->service()->full_name(), "/", method->name());
  route->package = method->service()->file()->package();
  route->allow_anonymous = method->options().GetExtension(ptd::gateway::v1::allow_anonymous);
  route->server_streaming = method->server_streaming();
  const Descriptor* input = method->input_type();
  for (const PathTemplate::Variable& v : route->path.variables()) {
    absl::StatusOr<FieldPath> field = ResolveFieldPath(input, v.field_path);
    if (!field.ok()) return field.status();
    const FieldDescriptor* leaf = field->back();
    if (leaf->is_repeated() || (leaf->type() == FieldDescriptor::TYPE_MESSAGE &&
                                leaf->message_type()->file()->name().rfind("google/protobuf/", 0) != 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("path variable ", v.field_path, " must be a singular scalar field"));
    }
    route->variables.push_back(*std::move(field));
  }
  if (rule.body() == "*") {
    route->body_is_whole = true;
  } else if (!rule.body().empty()) {
    const FieldDescriptor* f = FindField(input, rule.body());
    if (f == nullptr) return absl::InvalidArgumentError(absl::StrCat("body field ", rule.body(), " does not exist"));
    route->body_field = {f};
  }
  if (!rule.response_body().empty()) {
    const FieldDescriptor* f = FindField(method->output_type(), rule.response_body());
    if (f == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("response_body field ", rule.response_body(), " does not exist"));
    }
    route->response_field = {f};
  }
  return route;
}

}  // namespace

absl::StatusOr<FieldPath> ResolveFieldPath(const Descriptor* message, std::string_view dotted) {
  FieldPath path;
  const Descriptor* current = message;
  std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(dotted.data(), dotted.size()), '.');
  for (size_t i = 0; i < parts.size(); ++i) {
    if (current == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(FieldPathName(path), " is not a message, so it has no field ", std::string(parts[i])));
    }
    const FieldDescriptor* f = FindField(current, std::string_view(parts[i].data(), parts[i].size()));
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(current->full_name(), " has no field \"", std::string(parts[i]), "\""));
    }
    if (i + 1 < parts.size() && f->is_repeated()) {
      return absl::InvalidArgumentError(absl::StrCat(f->name(), " is repeated: it cannot be named inside a path"));
    }
    path.push_back(f);
    current = f->type() == FieldDescriptor::TYPE_MESSAGE ? f->message_type() : nullptr;
  }
  return path;
}

std::string FieldPathName(const FieldPath& path) {
  std::string out;
  for (const FieldDescriptor* f : path) {
    if (!out.empty()) out.push_back('.');
    out.append(f->name());
  }
  return out;
}

absl::StatusOr<RouteTable> RouteTable::Build(const google::protobuf::DescriptorPool& pool,
                                             const std::vector<std::string>& files,
                                             const std::vector<std::string>& service_prefixes) {
  RouteTable table;
  std::vector<std::string> errors;
  for (const std::string& name : files) {
    const google::protobuf::FileDescriptor* file = pool.FindFileByName(name);
    if (file == nullptr) continue;
    for (int s = 0; s < file->service_count(); ++s) {
      const google::protobuf::ServiceDescriptor* service = file->service(s);
      bool wanted = std::any_of(service_prefixes.begin(), service_prefixes.end(),
                                [&](const std::string& p) { return absl::StartsWith(service->full_name(), p); });
      if (!wanted) continue;
      for (int m = 0; m < service->method_count(); ++m) {
        const MethodDescriptor* method = service->method(m);
        // Unary and server-streaming calls map onto one HTTP request; client and bidirectional streams do not.
        if (method->client_streaming()) continue;
        if (!method->options().HasExtension(google::api::http)) continue;
        const google::api::HttpRule& top = method->options().GetExtension(google::api::http);
        std::vector<const google::api::HttpRule*> rules = {&top};
        for (const auto& extra : top.additional_bindings()) rules.push_back(&extra);
        for (const google::api::HttpRule* rule : rules) {
          absl::StatusOr<std::unique_ptr<Route>> route = MakeRoute(method, *rule);
          if (!route.ok()) {
            errors.push_back(absl::StrCat(method->full_name(), ": ", route.status().message()));
            continue;
          }
          table.routes_.push_back(*std::move(route));
        }
      }
    }
  }
  for (const auto& route : table.routes_) {
    auto& list = table.by_method_[route->http_method];
    for (const Route* other : list) {
      if (other->path.text() == route->path.text()) {
        errors.push_back(absl::StrCat(route->http_method, " ", route->path.text(), " is bound to both ",
                                      other->method->full_name(), " and ", route->method->full_name()));
      }
    }
    list.push_back(route.get());
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return table;
}

RouteTable::Lookup RouteTable::Find(std::string_view method, std::string_view path) const {
  Lookup out;
  auto it = by_method_.find(method);
  if (it != by_method_.end()) {
    for (const Route* route : it->second) {
      std::optional<std::vector<std::string>> values = route->path.Match(path);
      if (!values) continue;
      if (!out.match || route->path.CompareSpecificity(out.match->route->path) < 0) {
        out.match = Match{route, *std::move(values)};
      }
    }
  }
  if (out.match) return out;
  for (const auto& [other_method, routes] : by_method_) {
    if (other_method == method) continue;
    for (const Route* route : routes) {
      if (route->path.Match(path)) {
        out.path_known = true;
        out.allowed_methods.push_back(other_method);
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> GeneratedFileNames() {
  std::vector<std::string> names;
  google::protobuf::DescriptorPool::internal_generated_database()->FindAllFileNames(&names);
  return names;
}

}  // namespace ptd::gateway
