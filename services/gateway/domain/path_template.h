#ifndef PTD_SERVICES_GATEWAY_DOMAIN_PATH_TEMPLATE_H_
#define PTD_SERVICES_GATEWAY_DOMAIN_PATH_TEMPLATE_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

// google.api.http path templates (google/api/http.proto):
//   Template = "/" Segments [ Verb ] ;  Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;  Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   FieldPath = IDENT { "." IDENT } ;  Verb = ":" LITERAL ;
// e.g. "/v1/listings/{listing_id}", "/v1/{name=shelves/*/books/*}", "/v1/files/{path=**}", "/v1/keys/{id}:revoke".
namespace ptd::gateway {

class PathTemplate {
 public:
  enum class Kind { kLiteral, kSingle /* '*' */, kMulti /* '**' */ };
  struct Segment {
    Kind kind = Kind::kLiteral;
    std::string literal;
  };
  struct Variable {
    std::string field_path;  // "listing.listing_id"
    int first_segment = 0;
    int end_segment = 0;  // exclusive
  };

  // INVALID_ARGUMENT naming the problem for a template that does not follow the grammar, or puts "**"
  // anywhere but last.
  static absl::StatusOr<PathTemplate> Parse(std::string_view text);

  // The values of the variables when `path` (the request target without the query, still percent-encoded)
  // matches, in the order of variables(). A '*' matches one non-empty segment, '**' the rest of the path
  // (zero or more segments). Values are percent-decoded, except that "%2F" stays as is in multi-segment
  // variables (RFC 6570 reserved expansion). nullopt when it does not match or an escape is malformed.
  std::optional<std::vector<std::string>> Match(std::string_view path) const;

  // Orders templates that match the same path: literals beat '*', which beats '**'; segment by segment from
  // the left; then a verb beats none. Negative when this one is more specific.
  int CompareSpecificity(const PathTemplate& other) const;

  const std::vector<Segment>& segments() const { return segments_; }
  const std::vector<Variable>& variables() const { return variables_; }
  const std::string& verb() const { return verb_; }
  const std::string& text() const { return text_; }

  // The template in OpenAPI form: "/v1/files/{path}" (a variable over several segments becomes one parameter).
  std::string OpenApiPath() const;

 private:
  std::string text_;
  std::vector<Segment> segments_;
  std::vector<Variable> variables_;
  std::string verb_;
};

// Percent-decoding; nullopt on a malformed escape. With keep_slash, "%2F"/"%2f" stay encoded.
std::optional<std::string> PercentDecode(std::string_view text, bool keep_slash = false, bool plus_is_space = false);

}  // namespace ptd::gateway

#endif  // PTD_SERVICES_GATEWAY_DOMAIN_PATH_TEMPLATE_H_
