/*
 * kvc_json.h - JSON output of the CLI: any protobuf message of the schema
 * written as a JSON object (field names as in kvcache.proto, enums by
 * name, fixed64 ids and bytes as hex strings), and string escaping.
 */
#ifndef KVC_JSON_H
#define KVC_JSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

/* Write m as a JSON object. */
void kvc_json_msg(FILE *f, const ProtobufCMessage *m);

/* Write s as a JSON string (quoted, escaped); NULL as null. */
void kvc_json_str(FILE *f, const char *s);

#endif
